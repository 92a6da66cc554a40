#!/usr/bin/env bash
# make test: lint steps, unit test modules and Molecule scenarios. Every item prints
#   [test] <kind> <name>: ok|FAILED (N s)
# and the run ends with "N passed, N failed". Runs everything, exits non-zero on a failure.
#   SCENARIOS="common nginx" scripts/test.sh   limits the Molecule scenarios
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0 failed=0
logdir=${HURTIG_TEST_LOGS:-.cache/test-logs}
mkdir -p "$logdir"
record() { # kind name rc seconds [log file, default <kind>-<name>.log]
  if [ "$3" -eq 0 ]; then passed=$((passed + 1)); echo "[test] $1 $2: ok ($4 s)"
  else failed=$((failed + 1)); echo "[test] $1 $2: FAILED ($4 s, log: $logdir/${5:-$1-$2.log})"; fi
}

# On a failure CI shows only stdout: print what failed, not just the destroy step's tail.
failure_excerpt() { # log
  echo "----- excerpt of $1 -----"
  # the pytest failure report (verify step), else the failed Ansible tasks
  if grep -q '^=* FAILURES =*$' "$1"; then
    sed -n '/^=* FAILURES =*$/,/^=* .*\(passed\|failed\).* =*$/p' "$1" | head -n 200
  fi
  grep -n -A 25 -E '^fatal:|^failed:|FAILED! =>|not idempotent' "$1" | head -n 150
  tail -n 25 "$1"
  echo "----- end of excerpt -----"
}

# Lint: one item per step.
t0=$SECONDS
while IFS= read -r line; do
  case "$line" in
    "lint "*": ok ("*|"lint "*": FAILED ("*)
      name=${line#lint }; name=${name%%:*}; secs=${line##*(}; secs=${secs%% *}
      case "$line" in *": ok ("*) rc=0 ;; *) rc=1 ;; esac
      record lint "$name" "$rc" "$secs" ;;
    *) echo "$line" ;;
  esac
done < <(scripts/lint.sh 2>&1)
echo "[test] lint took $((SECONDS - t0)) s"

# Unit tests: one pytest run (one throwaway broker for all), one item per test module.
t0=$SECONDS
mapfile -t mods < <(find tests src -name 'test_*.py' -not -path '*/node_modules/*' 2>/dev/null | sort)
rm -f "$logdir/unit.xml"
python -m pytest -q -p no:cacheprovider --continue-on-collection-errors --junitxml="$logdir/unit.xml" "${mods[@]}" > "$logdir/unit.log" 2>&1
rc=$?
tail -n 1 "$logdir/unit.log"
[ $rc -ne 0 ] && failure_excerpt "$logdir/unit.log"
report=$([ -s "$logdir/unit.xml" ] && python scripts/unit-report.py "$logdir/unit.xml" "${mods[@]}")
while read -r name mrc secs; do [ -n "$name" ] && record unit "$name" "$mrc" "$secs" unit.log; done <<< "$report"
# pytest failed outside every test (a crash, a bad option, a fixture's teardown): one more item
if [ $rc -ne 0 ] && ! awk '$2 != 0 {bad = 1} END {exit !bad}' <<< "$report"; then
  record unit pytest 1 $((SECONDS - t0)) unit.log
fi
echo "[test] unit took $((SECONDS - t0)) s"

# Molecule scenarios: one item per scenario.
rm -f .cache/faults-ci.json
scenarios=${SCENARIOS:-$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)}
for s in $scenarios; do
  t0=$SECONDS
  NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0 molecule test -s "$s" > "$logdir/molecule-$s.log" 2>&1
  rc=$?
  grep -E '^=+ .*(passed|failed).* =+$|not idempotent' "$logdir/molecule-$s.log" | tail -n 3
  [ $rc -ne 0 ] && failure_excerpt "$logdir/molecule-$s.log"
  if [ "$s" = default ] && [ -f .cache/faults-ci.json ]; then
    python bench/chaos.py --summary .cache/faults-ci.json
  fi
  record molecule "$s" $rc $((SECONDS - t0))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
