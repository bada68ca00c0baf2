#!/usr/bin/env bash
# Used by both composite actions: install lanmirror from the action's own checkout into a venv in
# the runner's cache, and print the venv's python to GITHUB_ENV as LANMIRROR_PYTHON.
#
# The runner is shared by every job, pull requests included, so:
#   - what gets installed is exactly requirements.lock, by hash (--require-hashes), plus this
#     checkout's own source; nothing is resolved against the index on the day;
#   - the venv is keyed by the lock and the source, so a different checkout never reuses it;
#   - it is built in a temporary folder and renamed into place under flock: concurrent jobs wait
#     for one build, and an interrupted build never leaves a venv that is used afterwards;
#   - an existing venv is used at once, without the lock.
set -euo pipefail
err() { echo "::error title=lanmirror::$*"; exit 1; }
action_path=$(realpath "${1:?usage: action-install.sh ACTION_PATH}")
root=$action_path
while [ "$root" != / ] && ! grep -qs '^name = "lanmirror"' "$root/pyproject.toml"; do
  root=$(dirname "$root")
done
[ "$root" != / ] || err "cannot find lanmirror's pyproject.toml above $action_path; vendor the whole repository (see README)"
py=${LANMIRROR_BOOTSTRAP_PYTHON:-python3}
command -v "$py" >/dev/null || err "$py not found: install Python 3.10 or newer with venv on the runner (Debian/Ubuntu: apt-get install python3 python3-venv)"
"$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  err "$("$py" -V 2>&1) is too old: lanmirror needs Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
"$py" -c 'import venv, ensurepip' 2>/dev/null ||
  err "$py has no venv module: install it (Debian/Ubuntu: apt-get install python3-venv)"

hash=$(cd "$root" && { printf '%s\n' requirements.lock requirements-build.lock pyproject.toml; find src -type f -name '*.py'; } |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
cache=${LANMIRROR_CACHE:-${RUNNER_TOOL_CACHE:-$HOME/.cache}/lanmirror}
venv=$cache/venv-$hash
mkdir -p -m 700 "$cache"

if [ -f "$venv/.ok" ]; then
  echo "lanmirror venv cached at $venv"
else
  exec 9>"$cache/.install.lock"
  flock 9
  if [ -f "$venv/.ok" ]; then
    echo "lanmirror venv built by a concurrent job at $venv"
  else
    echo "installing lanmirror from $root into $venv"
    rm -rf "$cache"/.build-venv-* "$venv"  # leftovers of an interrupted build: never used
    tmp=$(mktemp -d "$cache/.build-venv-$hash.XXXXXX")
    "$py" -m venv "$tmp"
    pip=("$tmp/bin/python" -m pip --disable-pip-version-check --quiet)
    "${pip[@]}" install --require-hashes --no-deps -r "$root/requirements.lock" -r "$root/requirements-build.lock" 2>&1 |
      { grep -vi '^warning: location' || true; }
    "${pip[@]}" install --no-deps --no-index --no-build-isolation "$root" 2>&1 | { grep -vi '^warning: location' || true; }
    "$tmp/bin/python" -c 'import lanmirror.cmd.action'
    touch "$tmp/.ok"
    mv -T "$tmp" "$venv"
  fi
  flock -u 9
fi
if [ -n "${GITHUB_ENV:-}" ]; then
  echo "LANMIRROR_PYTHON=$venv/bin/python" >> "$GITHUB_ENV"
fi
echo "$venv/bin/python"
