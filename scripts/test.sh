#!/usr/bin/env bash
# make test: lint steps, unit test modules and Molecule scenarios. Every item prints
#   [test] <kind> <name>: ok|FAILED (N s)
# and the run ends with "N passed, N failed". Runs everything, exits non-zero on a failure.
#   SCENARIOS="common nginx" scripts/test.sh   limits the Molecule scenarios
#
# Two lanes, to keep CI under an hour on two cores: BACKGROUND scenarios (default: the
# 3-broker cluster, whose time is mostly brokers stopping, booting and syncing, and the
# monitoring node, whose tests mostly wait for scrapes and rule evaluations) start first
# and run beside lint, the unit tests and the other scenarios; SOLO scenarios (default: the
# staging stack and the worker node, whose tests time bursts, autoscaling and faults) run
# only after the background lane has finished, with the machine to themselves, in the order
# SOLO names them.
# SIDE scenarios (default: the VM lane, vm, whose qemu guest needs about one core) run in a
# lane of their own beside the SOLO ones, which leave a core mostly idle (CPU busy 50 % during
# worker, 65 % during default). worker comes first: the VM lane runs beside it and then beside
# default's create and converge, not beside default's fault tests (beside those, in CI of
# 903e854, it took 817 s and default 1,650 instead of 1,290).
# SPLIT scenarios (default: none; try "default worker") are cut where verify starts: the
# steps before it (create, converge, idempotence) run in a third lane beside the two others,
# so only their tests and destroy wait for the machine. On CI's two cores, already busy, it
# was slower (docs/testing.md).
#   BACKGROUND="" SIDE="" SPLIT="" scripts/test.sh     everything one after the other
#   scripts/test.sh --lanes     prints each lane's scenarios, in the order they run, and stops
set -uo pipefail
# No arguments: --help (or --list) prints the comment above; anything else is refused.
lanes_only=
case ${1:-} in
  "") ;;
  --lanes) lanes_only=1 ;;
  -h|--help|--list) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 (no arguments; --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
passed=0 failed=0 failed_logs=()
logdir=${HURTIG_TEST_LOGS:-.cache/test-logs}
mkdir -p "$logdir"
record() { # kind name rc seconds [log file, default <kind>-<name>.log]
  local log="$logdir/${5:-$1-$2.log}"
  if [ "$3" -eq 0 ]; then passed=$((passed + 1)); echo "[test] $1 $2: ok ($4 s)"
  else failed=$((failed + 1)) failed_logs+=("$log"); echo "[test] $1 $2: FAILED ($4 s, log: $log)"; fi
}

# The machine's CPU counters (busy idle, in ticks), and the share busy since a reading:
# where the time of a phase goes, and whether another lane would find a free core.
cpu_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat; }
cpu_busy_since() { # "busy idle" of an earlier cpu_ticks
  local b0 i0 b1 i1
  read -r b0 i0 <<< "$1"; read -r b1 i1 <<< "$(cpu_ticks)"
  echo "$(( 100 * (b1 - b0) / (b1 - b0 + i1 - i0 + 1) )) %"
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
# The same in a few lines, for the end of the run: the failed tests' assertions, else the
# last failed task of the log.
short_excerpt() { # log
  echo "=== what failed in $1"
  [ -f "$1" ] || return 0
  if grep -q -E '^(FAILED|ERROR) [^ ]+\.py' "$1"; then # pytest's summary, not Molecule's ERROR lines
    { grep -E '^(FAILED|ERROR) [^ ]+\.py' "$1"; grep -E '^E +' "$1"; } | cut -c1-240 | head -n 25
  else
    local n
    n=$(grep -n -E '^fatal:|^failed:|not idempotent' "$1" | tail -n 1 | cut -d: -f1)
    [ -n "$n" ] && sed -n "${n},$((n + 14))p" "$1" | cut -c1-400
    tail -n 4 "$1" | cut -c1-240
  fi
}

# Molecule scenarios: which ones, and in which lane.
# Every list here is one line of names between spaces, as in_list matches them.
scenarios=${SCENARIOS:-$(for f in molecule/*/molecule.yml; do f=${f%/molecule.yml}; printf '%s ' "${f#molecule/}"; done)}
solo_names=${SOLO-worker default}
in_list() { [[ " $2 " == *" $1 "* ]]; }
background=() foreground=() solo=() split=() side=()
for s in $scenarios; do
  if in_list "$s" "${BACKGROUND-rabbitmq-cluster monitoring}"; then background+=("$s")
  elif in_list "$s" "${SIDE-vm}"; then side+=("$s")
  elif ! in_list "$s" "$solo_names"; then foreground+=("$s"); fi
done
for s in $solo_names; do  # in SOLO's order; a scenario in the background or side lane stays there
  in_list "$s" "$scenarios" && ! in_list "$s" "${background[*]} ${side[*]}" || continue
  solo+=("$s")
  in_list "$s" "${SPLIT-}" && split+=("$s")
done
if [ -n "$lanes_only" ]; then
  printf '%s:%s\n' background "${background[*]:+ ${background[*]}}" foreground "${foreground[*]:+ ${foreground[*]}}" \
    solo "${solo[*]:+ ${solo[*]}}" side "${side[*]:+ ${side[*]}}" split "${split[*]:+ ${split[*]}}"
  exit 0
fi

# A scenario's test sequence as Molecule reads it (molecule matrix), one step per line
test_sequence() { # name
  NO_COLOR=1 molecule matrix -s "$1" test 2>/dev/null | sed -n 's/^[^a-z]*─ \([a-z_-]*\) .*/\1/p'
}
steps() { # name log step...: one Molecule command per step, until the first that fails
  local name=$1 log=$2 step; shift 2
  for step in "$@"; do
    NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0 molecule "$step" -s "$name" >> "$log" 2>&1 || return 1
  done
}
# Where a split scenario's sequence is cut: "pre" is every step before verify, "post" the rest
# (it ends with destroy, which runs even after a failure). Nothing to cut: no output.
split_sequence() { # name pre|post
  local seq
  mapfile -t seq < <(test_sequence "$1")
  local i n=${#seq[@]}
  for ((i = 0; i < n; i++)); do [ "${seq[i]}" = verify ] && break; done
  [ "$i" -lt "$n" ] && [ "${seq[n - 1]}" = destroy ] || return 0
  if [ "$2" = pre ]; then printf '%s\n' "${seq[@]:0:i}"; else printf '%s\n' "${seq[@]:i}"; fi
}
# The steps before verify of a split scenario, in a lane: "rc seconds" into pre-<name>.out
scenario_pre() { # name
  local t0=$SECONDS rc=0 pre
  mapfile -t pre < <(split_sequence "$1" pre)
  : > "$logdir/molecule-$1.log"
  [ ${#pre[@]} -gt 0 ] && { steps "$1" "$logdir/molecule-$1.log" "${pre[@]}" || rc=$?; }
  echo "$rc $((SECONDS - t0))" > "$logdir/pre-$1.out"
}

# One scenario: its log, its summary lines, an excerpt on failure; prints "rc seconds" last.
# A split scenario whose first part ran: its remaining steps (only destroy if that part
# failed), the seconds of both parts together.
scenario() { # name
  local t0=$SECONDS rc pre_rc pre_secs=0 post
  if [ -f "$logdir/pre-$1.out" ] && mapfile -t post < <(split_sequence "$1" post) && [ ${#post[@]} -gt 0 ]; then
    read -r pre_rc pre_secs < "$logdir/pre-$1.out"
    rc=$pre_rc
    if [ "$pre_rc" -eq 0 ]; then steps "$1" "$logdir/molecule-$1.log" "${post[@]:0:${#post[@]}-1}" || rc=1; fi
    steps "$1" "$logdir/molecule-$1.log" destroy || rc=1
    echo "(its steps before verify took $pre_secs s in the third lane)"
  else
    NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0 molecule test -s "$1" > "$logdir/molecule-$1.log" 2>&1
    rc=$?
  fi
  grep -E '^=+ .*(passed|failed).* =+$|not idempotent' "$logdir/molecule-$1.log" | tail -n 3
  [ $rc -ne 0 ] && failure_excerpt "$logdir/molecule-$1.log"
  if [ "$1" = default ] && [ -f .cache/faults-ci.json ]; then
    python bench/chaos.py --summary .cache/faults-ci.json
  fi
  echo "$rc $((SECONDS - t0 + pre_secs))"
}
# Print a scenario's output and record it from its last line ("rc seconds"; none: failed).
report() { # name output
  local rc secs
  sed '$d' <<< "$2"
  read -r rc secs <<< "$(tail -n 1 <<< "$2")"
  record molecule "$1" "${rc:-1}" "${secs:-0}"
}
run_scenario() { report "$1" "$(scenario "$1")"; } # in this lane, recorded at once

rm -f .cache/faults-ci.json "$logdir"/pre-*.out
lane_t0=$SECONDS lane_cpu=$(cpu_ticks)
if [ ${#background[@]} -gt 0 ]; then
  echo "[test] background lane: ${background[*]} (beside lint, unit and ${foreground[*]:-nothing})"
  (for s in "${background[@]}"; do scenario "$s" > "$logdir/lane-$s.out"; done) &
  lane_pid=$!
fi
if [ ${#split[@]} -gt 0 ]; then
  echo "[test] third lane: the steps before verify of ${split[*]}"
  (for s in "${split[@]}"; do scenario_pre "$s"; done) &
  split_pid=$!
fi

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
mapfile -t mods < <(find tests src templates -name 'test_*.py' -not -path '*/node_modules/*' 2>/dev/null | sort)
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

for s in "${foreground[@]}"; do run_scenario "$s"; done
if [ ${#background[@]} -gt 0 ]; then
  wait "$lane_pid"
  for s in "${background[@]}"; do report "$s" "$(cat "$logdir/lane-$s.out" 2>/dev/null)"; done
fi
[ ${#split[@]} -gt 0 ] && wait "$split_pid"
if [ ${#background[@]} -gt 0 ] || [ ${#split[@]} -gt 0 ]; then
  echo "[test] the lanes took $((SECONDS - lane_t0)) s (CPU busy $(cpu_busy_since "$lane_cpu"))"
fi
if [ ${#side[@]} -gt 0 ]; then
  echo "[test] side lane: ${side[*]} (beside ${solo[*]:-nothing})"
  (for s in "${side[@]}"; do scenario "$s" > "$logdir/lane-$s.out"; done) &
  side_pid=$!
fi
for s in "${solo[@]}"; do
  solo_cpu=$(cpu_ticks)
  run_scenario "$s"
  echo "[test] (CPU busy during $s: $(cpu_busy_since "$solo_cpu"))"
done
if [ ${#side[@]} -gt 0 ]; then
  wait "$side_pid"
  for s in "${side[@]}"; do report "$s" "$(cat "$logdir/lane-$s.out" 2>/dev/null)"; done
fi

# What failed, once more just above the total (where a viewer that shows only the tail finds it)
if [ "$failed" -gt 0 ]; then
  printf '%s\n' "${failed_logs[@]}" | sort -u | while read -r log; do short_excerpt "$log"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
