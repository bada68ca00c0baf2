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
#   - an existing venv is used at once, without the lock, but only if this user owns it and nobody
#     else can write it (nor the cache folder, nor its python); otherwise the install goes to a
#     private folder of this user's beside it;
#   - the lock is the cache folder itself (flock on a directory): there is no lock file whose
#     path another user could replace with a symlink;
#   - Python runs with -I and pip with --isolated: no PYTHON*/PIP_* variables, no pip.conf, no user
#     site-packages, and the job's working directory never shadows an import.
set -euo pipefail
umask 022  # nothing this script creates is writable by anyone else, whatever the job's umask
err() { echo "::error title=lanmirror::$*"; exit 1; }
action_path=$(realpath "${1:?usage: action-install.sh ACTION_PATH}")
root=$action_path
while [ "$root" != / ] && ! grep -qs '^name = "lanmirror"' "$root/pyproject.toml"; do
  root=$(dirname "$root")
done
[ "$root" != / ] || err "cannot find lanmirror's pyproject.toml above $action_path; vendor the whole repository (see README)"
py=${LANMIRROR_BOOTSTRAP_PYTHON:-python3}
command -v "$py" >/dev/null || err "$py not found: install Python 3.10 or newer with venv on the runner (Debian/Ubuntu: apt-get install python3 python3-venv)"
"$py" -I -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  err "$("$py" -V 2>&1) is too old: lanmirror needs Python 3.10 or newer (Debian/Ubuntu: apt-get install python3 python3-venv)"
"$py" -I -c 'import venv, ensurepip' 2>/dev/null ||
  err "$py has no venv module: install it (Debian/Ubuntu: apt-get install python3-venv)"

# .git_archival.txt carries the version of a vendored or downloaded copy (git archive fills it in).
hash=$(cd "$root" && { printf '%s\n' requirements.lock requirements-build.lock pyproject.toml; find src -type f -name '*.py';
  [ ! -f .git_archival.txt ] || echo .git_archival.txt; } |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
# private PATH: a real file or folder (not a symlink) owned by this user that nobody else can write.
me=$(id -u)
private() {
  [ -e "$1" ] && [ ! -L "$1" ] || return 1
  local owner mode
  read -r owner mode < <(stat -c '%u %a' -- "$1")
  [ "$owner" = "$me" ] && (( (8#$mode & 8#022) == 0 ))
}
# The venv's python is a symlink to the interpreter it was made from: that one may be root's.
private_python() {
  local target owner mode
  target=$(readlink -f -- "$1") || return 1
  read -r owner mode < <(stat -c '%u %a' -- "$target") || return 1
  { [ "$owner" = "$me" ] || [ "$owner" = 0 ]; } && (( (8#$mode & 8#022) == 0 ))
}
usable() {  # a finished venv that only this user could have written
  private "$1" && private "$1/.ok" && private "$1/bin" && private_python "$1/bin/python"
}

cache=${LANMIRROR_CACHE:-${RUNNER_TOOL_CACHE:-$HOME/.cache}/lanmirror}
mkdir -p -m 700 "$cache"
if ! private "$cache"; then
  # A shared folder (mode 1777, or another user's): build in a folder of our own beneath it.
  shared=$cache
  cache=$shared/user-$me
  mkdir -m 700 "$cache" 2>/dev/null || true
  private "$cache" || err "neither $shared nor $cache is private to this user (uid $me): set LANMIRROR_CACHE to a folder only this user can write"
  echo "lanmirror: $shared can be written by others; using $cache"
fi
venv=$cache/venv-$hash

if usable "$venv"; then
  echo "lanmirror venv cached at $venv"
else
  exec 9<"$cache"
  flock 9
  if usable "$venv"; then
    echo "lanmirror venv built by a concurrent job at $venv"
  else
    echo "installing lanmirror from $root into $venv"
    rm -rf "$cache"/.build-venv-* "$venv"  # leftovers of an interrupted build: never used
    tmp=$(mktemp -d "$cache/.build-venv-$hash.XXXXXX")
    "$py" -I -m venv --prompt lanmirror "$tmp"
    pip=("$tmp/bin/python" -I -m pip --isolated --disable-pip-version-check --quiet --retries 2 --timeout 15)
    if ! "${pip[@]}" install --require-hashes --no-deps -r "$root/requirements.lock" -r "$root/requirements-build.lock" \
        2>&1 | { grep -vi '^warning: location' || true; }; then
      rm -rf "$tmp"
      err "could not install lanmirror's dependencies (pip's lines above say why). The first run on a runner downloads them from the package index: PyPI, or the index set in /etc/pip.conf (pip runs --isolated here, so PIP_INDEX_URL, PIP_PROXY and ~/.config/pip are ignored; https_proxy is used). Later runs use the cached venv in $cache"
    fi
    "${pip[@]}" install --no-deps --no-index --no-build-isolation "$root" 2>&1 | { grep -vi '^warning: location' || true; }
    "$tmp/bin/python" -I -c 'import lanmirror.cmd.action'
    # pip wrote the build folder's path into every console script and activate: point them at the
    # venv's final place, so that an admin can run $venv/bin/lanmirror (doctor) directly.
    "$tmp/bin/python" -I - "$tmp" "$venv" <<'PY'
import os, sys
tmp, final = sys.argv[1], sys.argv[2]
bindir = os.path.join(tmp, "bin")
for name in os.listdir(bindir):
    path = os.path.join(bindir, name)
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, "rb") as f:
        data = f.read()
    if tmp.encode() in data:
        with open(path, "wb") as f:
            f.write(data.replace(tmp.encode(), final.encode()))
PY
    touch "$tmp/.ok"
    mv -T "$tmp" "$venv"
  fi
  flock -u 9
fi
if [ -n "${GITHUB_ENV:-}" ]; then
  echo "LANMIRROR_PYTHON=$venv/bin/python" >> "$GITHUB_ENV"
fi
echo "$venv/bin/python"
