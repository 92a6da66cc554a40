#!/usr/bin/env bash
# make bench / make chaos: bring the full stack up in containers (the Molecule default
# scenario), measure, and tear it down.
#   scripts/bench.sh bench [bench/run.py args]     -> bench/results.json
#   scripts/bench.sh chaos [bench/chaos.py args]   -> bench/faults.json (N=10000 for the full run)
#   KEEP_STACK=1   leave the stack up afterwards;  REUSE_STACK=1   use a stack already up
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }
# Check the argument before anything costly: an unknown one must never bring the stack up.
case ${1:-} in
  bench|chaos) what=$1; shift ;;
  -h|--help|--list) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
if [ "$what" = bench ] && ! { command -v wrk && command -v h2load; } >/dev/null; then
  echo "[bench] installing wrk and h2load (nghttp2-client) from Debian's archive"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nghttp2-client >/dev/null
fi
t0=$SECONDS
if [ -z "${KEEP_STACK:-}" ]; then trap 'python bench/stack.py down' EXIT; fi
first=0
if [ -z "${REUSE_STACK:-}" ]; then
  line=$(python bench/stack.py up)
  echo "[$what] stack up in $((SECONDS - t0)) s ($line)"
  first=$(sed -n 's/^converge: \([0-9.]*\) s.*/\1/p' <<<"$line")
fi
case $what in
  bench) python bench/run.py --site-first-s "$first" "$@"
         # the README's screenshot (docs/dashboard.png): the dashboard's last 15 minutes are the benchmarks' load
         python bench/dashboard.py --out docs/dashboard.png ;;
  chaos) python bench/chaos.py ${N:+--n "$N"} "$@" ;;
esac
echo "[$what] done in $((SECONDS - t0)) s"
