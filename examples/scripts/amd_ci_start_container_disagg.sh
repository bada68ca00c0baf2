#!/usr/bin/env bash
# Start the AMD CI container for disaggregated (prefill/decode over RDMA) tests on the newest nightly.
set -euo pipefail
# shellcheck source=ci_image.sh
source "$(dirname "$0")/ci_image.sh"
resolve_ci_image "$@"  # sets IMAGE; with --resolve-only it prints IMAGE and exits here

docker run -dt --user root --privileged --device=/dev/kfd --device=/dev/dri --device=/dev/infiniband \
  --group-add video --group-add rdma --ulimit memlock=-1 --shm-size 64g --cap-add=SYS_PTRACE \
  --cap-add=IPC_LOCK --security-opt seccomp=unconfined --ipc=host --network=host \
  -e HF_TOKEN -v /sys/class/infiniband:/sys/class/infiniband \
  -v "${GITHUB_WORKSPACE:-$PWD}:/sglang-checkout" --name ci_sglang_disagg "$IMAGE"
