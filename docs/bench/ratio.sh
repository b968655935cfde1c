#!/usr/bin/env bash
# The tutorial, cold, pglab against the hand-written lab (bash-lab.sh) on
# the same work, in alternating pairs (default 5): each pair's two wall
# times, their ratio, and of pglab's step time how much was pglab's own
# (a step's wall time less what its commands ran in their hosts).
#   docs/bench/ratio.sh [PAIRS] [IMAGE]
set -euo pipefail
pairs=${1:-5}
pglab=${PGLAB:-target/debug/pglab}
image=${2:-$("$pglab" --quiet image build | awk '{print $1}')}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
printf '%-5s %10s %10s %7s %14s\n' pair pglab bash ratio "pglab's own"
for i in $(seq 1 "$pairs"); do
  t=$(date +%s%N)
  "$pglab" -q run tutorial --check streaming --check pitr=name --transcript "$out" --json > "$out/p$i.json"
  p=$(ms "$t")
  t=$(date +%s%N)
  bash "$(dirname "$0")/bash-lab.sh" "$image" > "$out/b$i.log"
  b=$(ms "$t")
  own=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); s=r["steps"]; print("%.1f s of %.1f s" % (sum(x["elapsed_ms"]-x.get("in_host_ms",0) for x in s)/1000, sum(x["elapsed_ms"] for x in s)/1000))' "$out/p$i.json")
  echo "$p $b" >> "$out/pairs"
  printf '%-5s %8.1f s %8.1f s %7.2f %14s\n' "$i" "$(echo "$p/1000" | bc -l)" "$(echo "$b/1000" | bc -l)" "$(echo "$p/$b" | bc -l)" "$own"
done
python3 - "$out/pairs" <<'PY'
import statistics, sys
p, b = zip(*(map(int, l.split()) for l in open(sys.argv[1])))
print(f"medians: pglab {statistics.median(p)/1000:.1f} s, bash {statistics.median(b)/1000:.1f} s, ratio {statistics.median(p)/statistics.median(b):.2f}; ratios {min(a/c for a, c in zip(p, b)):.2f}-{max(a/c for a, c in zip(p, b)):.2f}")
PY
