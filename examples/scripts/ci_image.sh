# shellcheck shell=bash
# Sourced by both container-start scripts: which nightly to run. All lookup, retry, fallback and
# verification logic lives in `lanmirror resolve`; nothing of it is left in bash.
#
#   LANMIRROR_LAN_REGISTRY   LAN registry HOST:PORT (or the original LOCAL_DOCKER_REGISTRY)
#   MI30X_BASE_TAG / MI35X_BASE_TAG   nightly tag prefixes per GPU architecture
#   AMD_CI_IMAGE / AMD_CI_IMAGE_MI35X  force the image for a one-off run (mi30x / mi35x)
#   IMAGE_REPO               repository (default rocm/sgl-dev)
#   DOCKERHUB_USERNAME / DOCKERHUB_TOKEN   optional, for authenticated Hub pulls
#   LANMIRROR                the lanmirror command (default: lanmirror on PATH)

ci_image() {
  # The architecture: --arch, else lanmirror finds it in the runner's name (linux-mi325-gpu-3 -> mi30x).
  local gpu_arch=$1
  # Logs go to stderr; the last stdout line is the image. Exit 1 = nothing in the window.
  "${LANMIRROR:-lanmirror}" resolve --repo "${IMAGE_REPO:-rocm/sgl-dev}" ${gpu_arch:+--gpu-arch "$gpu_arch"} \
    --base-tag-for "mi30x=${MI30X_BASE_TAG:-v0.5.5-rocm700-mi30x}" \
    --base-tag-for "mi35x=${MI35X_BASE_TAG:-v0.5.5-rocm700-mi35x}" \
    --image-env AMD_CI_IMAGE --days "${IMAGE_DAYS:-7}" | tail -n 1
}

# What both start scripts do before their own `docker run`: parse --arch ARCH and --resolve-only,
# resolve (and pull) the image into IMAGE, and with --resolve-only print it and stop there (for
# machines without GPUs, and for the tests).
resolve_ci_image() {
  local gpu_arch="" resolve_only=${RESOLVE_ONLY:-0}
  while [ $# -gt 0 ]; do
    case "$1" in
      --arch) gpu_arch=$2; shift 2 ;;
      --resolve-only) resolve_only=1; shift ;;
      -h|--help) echo "usage: $0 [--arch mi30x|mi35x (default: from the runner's name)] [--resolve-only]"; exit 0 ;;
      *) echo "error: unknown argument '$1'" >&2; exit 2 ;;
    esac
  done
  IMAGE=$(ci_image "$gpu_arch")
  [ -n "$IMAGE" ] || exit 1
  echo "Using image: $IMAGE" >&2
  if [ "$resolve_only" = 1 ]; then
    echo "$IMAGE"
    exit 0
  fi
}
