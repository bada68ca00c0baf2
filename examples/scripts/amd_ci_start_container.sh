#!/usr/bin/env bash
# Start the AMD CI container (single node) on the newest nightly image.
set -euo pipefail
# shellcheck source=ci_image.sh
source "$(dirname "$0")/ci_image.sh"
resolve_ci_image "$@"  # sets IMAGE; with --resolve-only it prints IMAGE and exits here

docker run -dt --user root --device=/dev/kfd --device=/dev/dri --group-add video \
  --shm-size 32g --cap-add=SYS_PTRACE --security-opt seccomp=unconfined --ipc=host --network=host \
  -e HF_TOKEN -v "${GITHUB_WORKSPACE:-$PWD}:/sglang-checkout" --name ci_sglang "$IMAGE"
