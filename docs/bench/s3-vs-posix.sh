#!/bin/bash
# The same data backed up into a POSIX repository and into the lab's object
# store: the scenario's lab through 8-streaming (debian-12), pgbench -s 40,
# full backups with process-max 1 and 4 (twice), then a restore into the
# standby's emptied data directory. Times from the hosts' own clocks.
# usage: docs/bench/s3-vs-posix.sh tutorial|s3-repo
set -eu
cd "$(dirname "$0")/../.."
scn=$1
log=$(mktemp)
target/debug/pglab run $scn --platform debian-12 --until 8-streaming --keep > "$log" 2>&1
lab=$(grep -o "lab [0-9a-f]\{8\} kept" "$log" | awk '{print $2}')
P=pglab-$lab-primary S=pglab-$lab-standby
docker exec -u postgres $P sh -c 'pgbench -q -i -s 40 postgres >/dev/null 2>&1; psql -XAtc "select pg_size_pretty(pg_database_size(current_database()))"'
t() { docker exec -u postgres "$1" bash -c "s=\$EPOCHREALTIME; $2 >/dev/null 2>&1 || echo FAILED; e=\$EPOCHREALTIME; awk \"BEGIN{printf \\\"%.2f\\\", \$e - \$s}\""; }
for pm in 1 4 1 4; do echo "$scn backup pm=$pm $(t $P "pgbackrest --stanza=tutorial --type=full --start-fast --process-max=$pm backup")"; done
docker exec -u postgres $P pgbackrest --stanza=tutorial info | grep -E "database size|repo1: backup size" | tail -2
docker exec $S systemctl stop postgresql
for pm in 1 4; do docker exec -u postgres $S sh -c 'rm -rf /var/lib/postgresql/*/main/*'; echo "$scn restore pm=$pm $(t $S "pgbackrest --stanza=tutorial --process-max=$pm --type=standby restore")"; done
target/debug/pglab down $lab >/dev/null
