#!/usr/bin/env bash
# Create the control-node virtualenv with a Python >= 3.12 and install the pinned packages.
set -euo pipefail
case ${1:-} in
  -h|--help|--list) sed -n 2p "$0" | sed 's/^# //'; echo "usage: $0 [venv directory, default .venv]"; exit 0 ;;
  -*) echo "usage: $0 [venv directory, default .venv]" >&2; exit 2 ;;
esac
venv=${1:-.venv}
pick_python() {
  local c
  for c in "${HURTIG_PYTHON:-}" python3.13 python3.12 \
           "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    if "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}
if [ -x "$venv/bin/python" ] && ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  echo "[setup] $venv has a Python older than 3.12: recreating it"; rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  py=$(pick_python) || {
    echo "[setup] no Python >= 3.12 found (tried python3.13, python3.12, pyenv 3.12/3.13, python3)." >&2
    echo "[setup] install one (e.g. 'pyenv install 3.12') or set HURTIG_PYTHON=/path/to/python3.12" >&2
    exit 1
  }
  echo "[setup] creating $venv with $py ($("$py" --version))"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r requirements.txt
# The project's own Python package (API and worker runtime), editable.
"$venv/bin/python" -m pip install --quiet --no-deps -e .
# Collections: the pinned versions are bundled with the ansible package, so this says
# "Nothing to do" offline; with Galaxy reachable it would install what is missing.
"$venv/bin/ansible-galaxy" collection install -r requirements.yml 2>&1 | tail -n 1
echo "[setup] $venv ready: $("$venv/bin/ansible" --version | head -n 1)"
