#!/usr/bin/env bash
# Used by both composite actions: install lanmirror from the action's own checkout into a venv
# cached by content hash (a second run on the same runner takes well under a second), and
# print the venv's python path to GITHUB_ENV as LANMIRROR_PYTHON.
set -euo pipefail
action_path=$(realpath "${1:?usage: action-install.sh ACTION_PATH}")
root=$action_path
while [ "$root" != / ] && ! grep -qs '^name = "lanmirror"' "$root/pyproject.toml"; do
  root=$(dirname "$root")
done
if [ "$root" = / ]; then
  echo "::error title=lanmirror::cannot find lanmirror's pyproject.toml above $action_path; vendor the whole repository (see README)" >&2
  exit 1
fi
hash=$(cd "$root" && find pyproject.toml src -type f -name '*.py' -o -name pyproject.toml | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
cache=${LANMIRROR_CACHE:-${RUNNER_TOOL_CACHE:-$HOME/.cache}/lanmirror}
venv=$cache/venv-$hash
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.ok" ]; then
  echo "installing lanmirror from $root into $venv"
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$root" 2>&1 | grep -vi '^warning: location' || true
  "$venv/bin/python" -c 'import lanmirror.cmd.action'
  touch "$venv/.ok"
else
  echo "lanmirror venv cached at $venv"
fi
if [ -n "${GITHUB_ENV:-}" ]; then
  echo "LANMIRROR_PYTHON=$venv/bin/python" >> "$GITHUB_ENV"
fi
echo "$venv/bin/python"
