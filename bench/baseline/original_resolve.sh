#!/usr/bin/env bash
# The original inline bash of the AMD CI start scripts (see ../shared/seed/pr-23073-report.txt),
# kept faithful for the benchmarks: serial probes over 7 days, local cache → LAN → Hub,
# `docker manifest inspect --insecure` (a counted GET on Docker Hub), and retry_with_backoff for Hub
# pulls (30 s + jitter, doubling, capped at 300 s). Two deviations, both forced by the test stack:
# the registry addresses come from the environment, and the fake Hub is plain HTTP on loopback so
# its probe needs --insecure too.
#   usage: original_resolve.sh BASE_TAG   (env: REPO, LOCAL_DOCKER_REGISTRY, HUB, FIND_ONLY=1)
set -u

retry_with_backoff() {
    local max_attempts=$1; shift
    local attempt=1
    local wait_secs=30
    local jitter=$(( RANDOM % 30 ))
    while true; do
        if "$@"; then
            return 0
        fi
        if (( attempt >= max_attempts )); then
            echo "Error: '$*' failed after ${max_attempts} attempts" >&2
            return 1
        fi
        local sleep_time=$(( wait_secs + jitter ))
        echo "Attempt ${attempt}/${max_attempts} failed. Retrying in ${sleep_time}s..." >&2
        sleep "${sleep_time}"
        (( attempt++ ))
        (( wait_secs = wait_secs * 2 > 300 ? 300 : wait_secs * 2 ))
        jitter=$(( RANDOM % 30 ))
    done
}

find_latest_image() {
    local base_tag=$1 days_back image_tag image_id
    for days_back in {0..6}; do
        image_tag="${base_tag}-$(date -u -d "${days_back} days ago" +%Y%m%d)"
        image_id=$(docker images -q "${HUB}/${REPO}:${image_tag}")
        if [[ -n "$image_id" ]]; then
            echo "Found cached image locally: ${HUB}/${REPO}:${image_tag}" >&2
            echo "${HUB}/${REPO}:${image_tag}"
            return 0
        fi
    done
    for days_back in {0..6}; do
        image_tag="${base_tag}-$(date -u -d "${days_back} days ago" +%Y%m%d)"
        if docker manifest inspect --insecure "${LOCAL_DOCKER_REGISTRY}/${REPO}:${image_tag}" >/dev/null 2>&1; then
            echo "Found available image: ${LOCAL_DOCKER_REGISTRY}/${REPO}:${image_tag}" >&2
            echo "${LOCAL_DOCKER_REGISTRY}/${REPO}:${image_tag}"
            return 0
        fi
    done
    for days_back in {0..6}; do
        image_tag="${base_tag}-$(date -u -d "${days_back} days ago" +%Y%m%d)"
        if docker manifest inspect --insecure "${HUB}/${REPO}:${image_tag}" >/dev/null 2>&1; then
            echo "Found image on Docker Hub: ${HUB}/${REPO}:${image_tag}" >&2
            echo "HUB ${HUB}/${REPO}:${image_tag}"
            return 0
        fi
    done
    echo "Error: no image found for ${base_tag} in the last 7 days" >&2
    return 1
}

found=$(find_latest_image "$1") || exit 1
[ "${FIND_ONLY:-0}" = 1 ] && { echo "${found#HUB }"; exit 0; }
case "$found" in
    HUB\ *) image=${found#HUB }; retry_with_backoff 5 docker pull -q "$image" >/dev/null || exit 1 ;;
    "${LOCAL_DOCKER_REGISTRY}"/*) image=$found; docker pull -q "$image" >/dev/null || exit 1 ;;
    *) image=$found ;;
esac
echo "$image"
