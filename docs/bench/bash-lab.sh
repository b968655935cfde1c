#!/usr/bin/env bash
# The baseline pglab is measured against: the corrected tutorial done by hand
# with docker + docker exec, one command after another, on pglab's own host
# image. Lab up, given table, the corrected steps 0-10, one streaming insert,
# one PITR restore (to a named restore point), lab down. Prints phase times.
#
#   docs/bench/bash-lab.sh [IMAGE]     (default: the image `pglab image build` prints)
set -euo pipefail
IMAGE=${1:-$(cargo run -q -p pglab -- --quiet image build | awk '{print $1}')}
PG=15 CONF=/etc/postgresql/15/main DATA=/var/lib/postgresql/15/main
ID=bash$$ NET=pglab-$ID
LABEL=(--label pglab.lab=$ID --label pglab.owner=bash-baseline)
t0=$(date +%s.%N)
now() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
cleanup() { docker rm -f $ID-primary $ID-standby >/dev/null 2>&1 || true; docker network rm $NET >/dev/null 2>&1 || true; }
trap cleanup EXIT

# poll CMD until it succeeds, 60 s at most (no bare sleeps for readiness)
poll() { local end=$((SECONDS + 60)); until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || { echo "timeout: $*" >&2; return 1; }; sleep 0.05; done; }
x() { local h=$1; shift; docker exec -i $ID-$h "$@"; }          # as root
u() { local h=$1 usr=$2; shift 2; docker exec -i -u "$usr" -w / $ID-$h bash -c "$*"; }

docker network create --internal "${LABEL[@]}" $NET >/dev/null
for h in primary standby; do
  docker run -d --name $ID-$h --hostname $h --network $NET "${LABEL[@]}" \
    --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:rw $IMAGE >/dev/null
done
for h in primary standby; do poll x $h sudo -u postgres psql -Xqc 'select 1'; done
P=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" $ID-primary)
S=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" $ID-standby)
u primary postgres "psql -Xqc \"CREATE TABLE select_table (select_column text, select_number int); INSERT INTO select_table SELECT 'row ' || g, g FROM generate_series(1,100) g\""
echo "lab up + given: $(now) s"

PW=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
# 0: SSH for postgres, standby -> primary
u standby postgres "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519"
u primary postgres "mkdir -p -m 700 ~/.ssh"
u standby postgres "cat ~/.ssh/id_ed25519.pub" | u primary postgres "cat >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys"
u standby postgres "ssh-keyscan -t ed25519 $P >> ~/.ssh/known_hosts 2>/dev/null && ssh -o BatchMode=yes $P true"
# 1: pgBackRest on the primary
u primary dba "sudo apt update -qq 2>/dev/null && sudo apt -y -qq install pgbackrest >/dev/null 2>&1 && sudo cp /etc/pgbackrest.conf /etc/pgbackrest.conf.backup"
x primary tee /etc/pgbackrest.conf >/dev/null <<EOF
[global]
repo1-path=/var/lib/pgbackrest
repo1-retention-full=2
log-level-console=info
log-level-file=debug

[tutorial]
pg1-path=$DATA
EOF
# 2: the role
u primary postgres "psql -Xqc 'CREATE ROLE replicator WITH REPLICATION LOGIN'"
u primary postgres "psql -Xq" <<<"ALTER ROLE replicator PASSWORD '$PW'"
# 3-5: postgresql.conf, pg_hba.conf, restart
u primary postgres "psql -Xqc 'SHOW config_file'" >/dev/null
x primary tee -a $CONF/postgresql.conf >/dev/null <<EOF
listen_addresses = '*'
password_encryption = scram-sha-256
wal_level = replica
max_wal_senders = 3
archive_mode = on
archive_command = 'pgbackrest --stanza=tutorial archive-push %p'
EOF
x primary bash -c "echo 'host replication replicator $S/32 scram-sha-256' >> $CONF/pg_hba.conf"
u primary dba "sudo systemctl restart postgresql"
poll u primary postgres "psql -Xqc 'select 1'"
# 6: the standby's pgBackRest and password
u standby dba "sudo apt update -qq 2>/dev/null && sudo apt -y -qq install pgbackrest >/dev/null 2>&1"
x standby tee /etc/pgbackrest.conf >/dev/null <<EOF
[global]
repo1-host=$P
repo1-host-user=postgres
repo1-path=/var/lib/pgbackrest
repo1-retention-full=2
log-level-console=info
log-level-file=debug
delta=y

[tutorial]
pg1-path=$DATA
recovery-option=primary_conninfo=host=$P user=replicator
recovery-option=recovery_target_timeline=latest
EOF
u standby postgres "umask 077; cat > ~/.pgpass" <<<"$P:5432:replication:replicator:$PW"
# 7: stanza, check, full backup
u primary postgres "pgbackrest --stanza=tutorial stanza-create && pgbackrest --stanza=tutorial check && pgbackrest --stanza=tutorial --type=full backup" >/dev/null
# 8: restore on the standby
u standby dba "sudo systemctl stop postgresql"
poll bash -c "! docker exec $ID-standby test -e $DATA/postmaster.pid"
u standby dba "sudo -u postgres pgbackrest --stanza=tutorial --type=standby restore" >/dev/null
u standby dba "sudo systemctl start postgresql"
poll bash -c "docker exec -u postgres $ID-standby psql -XAtc 'select status from pg_stat_wal_receiver' | grep -q streaming"
# 9: confirm; 10: cron
u standby postgres "psql -XAtc 'SELECT count(*) FROM select_table'" | grep -qx 100
u primary postgres "psql -Xqc \"INSERT INTO select_table VALUES ('some data', 101)\""
u primary postgres "pgbackrest --stanza=tutorial --type=full backup" >/dev/null
u standby postgres "psql -XAtc \"SELECT count(*) FROM select_table WHERE select_column='some data'\"" | grep -qx 1
u primary postgres "(crontab -l 2>/dev/null; echo '0 23 * * * pgbackrest --stanza=tutorial --type=full backup') | crontab -"
echo "steps done: $(now) s"

# one streaming insert, seen on the standby without a backup
u primary postgres "psql -Xqc \"INSERT INTO select_table VALUES ('streamed', 102)\""
poll bash -c "docker exec -u postgres $ID-standby psql -XAtc \"SELECT count(*) FROM select_table WHERE select_number=102\" | grep -qx 1"
echo "streaming insert seen: $(now) s"

# PITR to a named restore point: 10 rows back, then 10 more that must vanish
u primary postgres "psql -Xq" <<'EOF'
CREATE TABLE pitr (id int);
INSERT INTO pitr SELECT generate_series(1,10);
SELECT pg_create_restore_point('bash_rp');
INSERT INTO pitr SELECT generate_series(11,20);
EOF
SEG=$(u primary postgres "psql -XAtc 'SELECT pg_walfile_name(pg_switch_wal())'")
poll bash -c "docker exec -u postgres $ID-primary psql -XAtc \"SELECT last_archived_wal >= '$SEG' FROM pg_stat_archiver\" | grep -qx t"
u standby dba "sudo systemctl stop postgresql"
poll bash -c "! docker exec $ID-standby test -e $DATA/postmaster.pid"
u standby postgres "pgbackrest --stanza=tutorial --delta --type=name --target=bash_rp --target-action=promote restore" >/dev/null
u standby dba "sudo systemctl start postgresql"
poll bash -c "docker exec -u postgres $ID-standby psql -XAtc 'select pg_is_in_recovery()' | grep -qx f"
[ "$(u standby postgres "psql -XAtc 'SELECT count(*) FROM pitr'")" = 10 ]
echo "PITR restored (10 rows): $(now) s"
cleanup
echo "total with lab down: $(now) s"
