#!/usr/bin/env bash
# Checkpoint save and restore, measured: the tutorial through step 8 saved
# once, then started from its images N times (default 5), each to a lab
# that streams again. Prints each run's figures from its JSON report.
#   docs/bench/checkpoint.sh [N] [platform]
set -euo pipefail
n=${1:-5}
platform=${2:-debian-12}
pglab=${PGLAB:-target/debug/pglab}
stanza="bench$$"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { "$pglab" -q run tutorial --platform "$platform" --until 8-streaming --checkpoint --set "stanza=$stanza" --transcript "$out" --json; }
t0=$(date +%s%N)
run > "$out/save.json"
echo "save run (replay through 8-streaming + save): $(( ($(date +%s%N) - t0) / 1000000 )) ms"
key=$("$pglab" -q checkpoint list --json | python3 -c 'import json,sys; print(max(json.load(sys.stdin), key=lambda c: c["created"])["key"])')
"$pglab" -q checkpoint list | grep -E "KEY|$key"
for i in $(seq 1 "$n"); do
  t0=$(date +%s%N)
  run > "$out/r$i.json"
  wall=$(( ($(date +%s%N) - t0) / 1000000 ))
  python3 - "$out/r$i.json" "$wall" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["checkpoint"]
print(f'restore {c["restore_ms"]} ms (lab created, standby streaming), containers {r["lab_timings"]["containers"]} ms, SQL-ready {r["lab_timings"]["sql_ready"]} ms, run {r["total_ms"]} ms, process {sys.argv[2]} ms')
PY
done
"$pglab" -q checkpoint rm "$key"
