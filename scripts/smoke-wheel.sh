#!/usr/bin/env bash
# Smoke-test a built wheel the way a user gets it: a fresh venv, the locked dependencies by hash,
# the wheel itself, run from an empty folder (no access to the source tree).
#   scripts/smoke-wheel.sh DIST_DIR [EXPECTED_VERSION]
# SMOKE_VENV=DIR builds the venv there and keeps it (the tests resolve a nightly with it).
set -euo pipefail
dist=$(realpath "${1:?usage: smoke-wheel.sh DIST_DIR [EXPECTED_VERSION]}")
expected=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${SMOKE_VENV:-}" ]; then ln -s "$(realpath -m "$SMOKE_VENV")" "$work/venv"; fi
python3 -m venv "$(realpath -m "$work/venv")"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$root/requirements.lock"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-index "$dist"/lanmirror-*.whl
cd "$work"
got=$("$work/venv/bin/lanmirror" --version)
echo "$got"
if [ -n "$expected" ] && [ "$got" != "lanmirror $expected" ]; then
  echo "::error title=smoke test::the wheel says '$got', the tag says $expected" >&2
  exit 1
fi
"$work/venv/bin/lanmirror" resolve --help >/dev/null
# doctor exits 1 when a check fails (no LAN registry here); it must still run and print its JSON.
set +e
"$work/venv/bin/lanmirror" doctor --json --timeout 2 > doctor.json
rc=$?
set -e
[ "$rc" -le 1 ] && "$work/venv/bin/python" -c 'import json, sys; json.load(open("doctor.json"))' || {
  echo "::error title=smoke test::lanmirror doctor --json failed (exit $rc)" >&2; exit 1; }
echo "smoke test passed"
