#!/usr/bin/env bash
# Vendor lanmirror into the repository in DEST (default: the current folder), from the git clone
# this script lives in, at that clone's HEAD:
#   DEST/resolve-image   the whole project (`uses: ./resolve-image`)
#   DEST/mirror-to-lan   its mirror/ folder (`uses: ./mirror-to-lan`; it installs from ./resolve-image)
# The copy is `git archive`'s, so .git_archival.txt carries the commit and its release tag: the
# vendored copy installs as the version it came from (1.2.0, or 0.1.devN+g<sha> before a release),
# not as 0.0.0. Both folders are replaced whole, so an update never leaves old files behind.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-.}
if ! git -C "$here" rev-parse --verify -q HEAD >/dev/null; then
  echo "vendor.sh: $here is not a git clone of lanmirror; clone it first (see the README's Vendoring)" >&2
  exit 2
fi
[ -d "$dest" ] || { echo "vendor.sh: $dest is not a folder" >&2; exit 2; }
dest=$(cd "$dest" && pwd)
case "$dest/" in
  "$here"/*) echo "vendor.sh: vendor into your own repository, not into lanmirror's clone ($here)" >&2; exit 2 ;;
esac
rm -rf "$dest/resolve-image" "$dest/mirror-to-lan"
mkdir "$dest/resolve-image"
git -C "$here" archive --format=tar HEAD | tar -x -C "$dest/resolve-image"
cp -r "$dest/resolve-image/mirror" "$dest/mirror-to-lan"
if version=$(git -C "$here" describe --tags --match 'v[0-9]*' 2>/dev/null); then
  :
else
  # No release tag reachable (before the first release, or a clone without tags): describe the
  # commit as N commits after 0.0.0, as setuptools-scm names an untagged checkout (0.0.1.devN+g<sha>).
  sha=$(git -C "$here" rev-parse --short=12 HEAD)
  version="v0.0.0-$(git -C "$here" rev-list --count HEAD)-g$sha"
  sed -i "s/^describe-name: *\$/describe-name: $version/" "$dest/resolve-image/.git_archival.txt"
fi
echo "vendored lanmirror $version into $dest/resolve-image and $dest/mirror-to-lan"
echo "next: git add -A resolve-image mirror-to-lan && git commit -m \"Vendor lanmirror $version\""
