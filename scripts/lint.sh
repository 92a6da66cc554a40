#!/usr/bin/env bash
# make lint: yamllint, ansible-lint (production profile), syntax-check of site.yml, ruff,
# node --check of the dashboard's scripts.
# Prints one line per step: "lint <step>: ok|FAILED (N s)"; exits non-zero if any failed.
set -uo pipefail
# No arguments: --help (or --list) prints the comment above; anything else is refused.
case ${1:-} in
  "") ;;
  -h|--help|--list) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 (no arguments; --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
failed=0
step() {
  local name=$1; shift
  local t0=$SECONDS out
  if out=$("$@" 2>&1); then
    echo "lint $name: ok ($((SECONDS - t0)) s)"
  else
    echo "$out" | tail -n 60
    echo "lint $name: FAILED ($((SECONDS - t0)) s)"
    failed=$((failed + 1))
  fi
}
py_dirs=$(ls -d tests molecule/*/tests molecule/*/files src scripts bench templates/*/functions 2>/dev/null | tr '\n' ' ')
step yamllint yamllint --strict .
step ansible-lint ansible-lint --profile production --offline
step syntax-check ansible-playbook --syntax-check -i inventories/production site.yml
step syntax-check-staging ansible-playbook --syntax-check -i inventories/staging site.yml
# shellcheck disable=SC2086
step ruff ruff check $py_dirs
# shellcheck disable=SC2086
step ruff-format ruff format --check $py_dirs
step dashboard-js sh -c 'for f in roles/monitoring/dashboard/build.mjs roles/monitoring/dashboard/src/*.js; do node --check "$f" || exit 1; done'
exit $((failed > 0))
