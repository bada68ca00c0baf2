#!/usr/bin/env bash
# Run by lanmirror-warm.service on a runner host: pull the newest nightly of each base tag into
# this host's Docker cache (so the first CI job finds it), then bound the disk with prune --local.
# Settings come from /etc/default/lanmirror-warm (EnvironmentFile), e.g.
#   LANMIRROR_LAN_REGISTRY=10.0.1.5:5000,10.0.2.5:5000   IMAGE_REPO=rocm/sgl-dev
#   BASE_TAGS="v0.5.5-rocm700-mi30x v0.5.5-rocm720-mi30x" KEEP=3   LAN_SELECT=spread
set -euo pipefail
lanmirror=${LANMIRROR:-lanmirror}
repo=${IMAGE_REPO:-rocm/sgl-dev}
status=0
for base in ${BASE_TAGS:?set BASE_TAGS to the nightly tag prefixes to keep warm}; do
  # newest: pull the newest nightly even when an older one is cached (that is the point of warming)
  "$lanmirror" resolve --repo "$repo" --base-tag "$base" --days "${DAYS:-7}" --policy newest \
    --lan-select "${LAN_SELECT:-spread}" --min-pull-rate "${MIN_PULL_RATE:-5}" || status=1
  "$lanmirror" prune --local --repo "$repo" --base-tag "$base" --keep "${KEEP:-3}" || status=1
done
exit "$status"
