#!/usr/bin/env bash
# Start the AMD CI container (single node) on the newest nightly image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=ci_image.sh
source "$here/ci_image.sh"
parse_start_args "$@"

image=$(ci_image "$GPU_ARCH")
echo "Using image: $image" >&2
if [ "$RESOLVE_ONLY" = 1 ]; then
  echo "$image"
  exit 0
fi

docker run -dt --user root --device=/dev/kfd --device=/dev/dri --group-add video \
  --shm-size 32g --cap-add=SYS_PTRACE --security-opt seccomp=unconfined --ipc=host --network=host \
  -e HF_TOKEN -v "${GITHUB_WORKSPACE:-$PWD}:/sglang-checkout" --name ci_sglang "$image"
