"""Groups of flags, each a function that adds them to a parser or an argument group: the ones
several commands share (registry access, the Hub login, output, the record), and the ones that
make up a group of one command's help (the pull guards, the GPU architecture, mirror's tag
sources and transfer knobs)."""

from __future__ import annotations

from typing import Any

from lanmirror.cmd.argtypes import days, positive_float, rate_mbps
from lanmirror.sources.arch import DEFAULT_ARCH, DEFAULT_MAP, DEFAULT_PATTERN

Group = Any  # an ArgumentParser or one of its argument groups: both take add_argument


def access(p: Group) -> None:
    """How the registries are reached: plain HTTP where allowed, CAs, the LAN's login."""
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="allow plain HTTP to this registry, HOST[:PORT] or CIDR (repeatable; default "
                        "$LANMIRROR_INSECURE_REGISTRIES). Loopback and the Docker daemon's insecure-registries "
                        "are allowed already")
    p.add_argument("--certs-dir", metavar="DIR",
                   help="Docker's certs.d: DIR/<host:port>/*.crt are CAs, client.cert + client.key give mutual TLS "
                        "(default $LANMIRROR_CERTS_DIR, else /etc/docker/certs.d)")
    p.add_argument("--lan-username", metavar="USER",
                   help="user for the LAN registries that need a login; the password is read from "
                        "$LANMIRROR_LAN_PASSWORD, never from a flag (default $LANMIRROR_LAN_USERNAME, else what "
                        "`docker login LAN` stored)")


def hub_login(p: Group, what: str = "Docker Hub user") -> None:
    p.add_argument("--hub-username", metavar="USER",
                   help=f"{what} (default $DOCKERHUB_USERNAME, else what `docker login` stored); the token is "
                        "read from $DOCKERHUB_TOKEN, never from a flag")


def output(p: Group) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object with every output on stdout")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request decision")


def common(p: Group) -> None:
    access(p)
    output(p)


def record(p: Group) -> None:
    """Where the run's one record line goes besides the log (docs/records.md)."""
    p.add_argument("--record-file", metavar="PATH", default=None,
                   help="also append this run's record to the JSON Lines file PATH (atomic: concurrent jobs never "
                        "interleave; default $LANMIRROR_RECORD_FILE). The record line always goes to the log; "
                        "$LANMIRROR_RECORD_KEY, when set, signs it so that `lanmirror report` can tell it from a copy")
    p.add_argument("--no-record-line", action="store_true",
                   help="do not print the record line to stderr (--record-file still gets it). Ignored in GitHub "
                        "Actions, where the report reads it from the job log")


def probe_timeouts(p: Group) -> None:
    """How long the probes of each source may take before it is skipped or counted unavailable."""
    p.add_argument("--probe-timeout", metavar="SECONDS", type=positive_float, default=2.0,
                   help="seconds a LAN registry gets to answer all probes before it is skipped (default 2)")
    p.add_argument("--hub-timeout", metavar="SECONDS", type=positive_float, default=30.0,
                   help="seconds the Hub's probes may take, retries included, before it counts as unavailable "
                        "(default 30)")


def pull_guards(p: Group) -> None:
    """How long a pull may take, and how slow it may be before it is handed to the next source."""
    p.add_argument("--stall-timeout", metavar="SECONDS", type=positive_float, default=120.0,
                   help="abort a pull that makes no progress for this many seconds and try the next source "
                        "(default 120)")
    p.add_argument("--budget", type=positive_float, default=3900.0, metavar="SECONDS",
                   help="wall-clock budget of the whole resolve: every probe, check and pull gets at most what "
                        "is left of it, and no further source is tried once it is spent (default 3900: the "
                        "pull timeout plus room for probes and a hand-off)")
    p.add_argument("--pull-timeout", metavar="SECONDS", type=positive_float, default=3600.0,
                   help="abort any pull that takes longer than this, or as soon as the bytes left cannot "
                        "arrive in time at the current rate (default 3600)")
    p.add_argument("--min-pull-rate", type=rate_mbps, default=5.0, metavar="MB/S",
                   help="hand a LAN pull that downloads slower than this for --pull-rate-window seconds to "
                        "the next source, keeping its completed layers (default 5; 0 = no floor)")
    p.add_argument("--pull-rate-window", type=positive_float, default=30.0, metavar="SECONDS",
                   help="how long a LAN pull must stay below --min-pull-rate, counting only time with bytes "
                        "left to download (extraction never counts) (default 30)")


def gpu_arch(p: Group) -> None:
    """The runner's GPU architecture and what it chooses: base tags per architecture, an override."""
    p.add_argument("--gpu-arch", metavar="ARCH",
                   help="the runner's GPU architecture (e.g. mi35x); default: found in the runner's name (--runner-id, "
                        "$RUNNER_NAME, then the host name) by --arch-pattern and --arch-map, when a base tag or "
                        "override needs it")
    p.add_argument("--arch-pattern", default=DEFAULT_PATTERN, metavar="REGEX",
                   help=f"where the GPU is in the runner's name: its first group, matched without case "
                        f"(default '{DEFAULT_PATTERN}': linux-mi325-gpu-3 gives mi325)")
    p.add_argument("--arch-map", default=",".join(f"{k}={v}" for k, v in DEFAULT_MAP.items()), metavar="GPU=ARCH,...",
                   help="GPU to architecture (default %(default)s)")
    p.add_argument("--base-tag-for", action="append", default=[], metavar="ARCH=TAG",
                   help="a base tag for one architecture (repeatable, in preference order; before --base-tag, "
                        "whose {arch} is filled in too), e.g. mi35x=v0.5.5-rocm720-mi35x")
    p.add_argument("--image-env", metavar="PREFIX",
                   help="force the image from the environment: PREFIX_<ARCH> (AMD_CI_IMAGE_MI35X), or PREFIX alone "
                        f"for {DEFAULT_ARCH} (AMD_CI_IMAGE), like --image, with its own login in <VARIABLE>_USERNAME "
                        "and <VARIABLE>_PASSWORD if set; unset or empty: the search as usual")


def tag_sources(p: Group) -> None:
    """Where mirror's tags come from: flags, a file, an artifact of a workflow run, or a backfill window."""
    p.add_argument("--tag", action="append", default=[], metavar="TAG", help="a tag to mirror (repeatable)")
    p.add_argument("--tag-file", metavar="PATH",
                   help="file with one tag per line, or a folder of <arch>.txt files (the publish job's artifact)")
    p.add_argument("--from-artifact", metavar="NAME-OR-GLOB",
                   help="read the tag file from this GitHub Actions artifact (GITHUB_TOKEN, GITHUB_REPOSITORY, "
                        "GITHUB_API_URL; the current run unless --run-id or --workflow)")
    p.add_argument("--run-id", type=int, metavar="ID", help="workflow run that holds the artifact")
    p.add_argument("--workflow", metavar="FILE",
                   help="take the artifact from this workflow's latest successful run on the default branch "
                        "from push, schedule or workflow_dispatch (never a pull request's)")
    p.add_argument("--any-branch", action="store_true",
                   help="with --workflow: accept the latest successful run of any branch or event")
    p.add_argument("--backfill", type=days, metavar="DAYS",
                   help="mirror every nightly of the last DAYS days (1 to 366) that the source has (needs --base-tag)")
    p.add_argument("--base-tag", action="append", default=[], metavar="TAG", help="nightly prefix for --backfill")


def transfer(p: Group) -> None:
    """How blobs are read (parallel ranges) and written (chunked uploads): the copy engine's knobs."""
    p.add_argument("--range-threshold-mb", type=int, default=64, metavar="MB",
                   help="read blobs larger than this as parallel bounded HTTP ranges (default 64)")
    p.add_argument("--range-chunk-mb", type=int, default=4, metavar="MB", help="size of one range (default 4)")
    p.add_argument("--range-below-mbps", type=float, default=150.0, metavar="MB/S",
                   help="a large blob starts as one stream and switches to parallel ranges only if that "
                        "connection delivers less than this over its first 4 MiB (default 150: a CDN flow at "
                        "100 MB/s still gains from ranges, a LAN or loopback source does not; 0 = ranges from "
                        "the start)")
    p.add_argument("--ranges", type=int, default=9, metavar="N",
                   help="most ranges held at once, 1 to 64, shared by the blobs copied at once (default 9). A blob "
                        "starts with 4 downloading and doubles that while the total rate still grows, back "
                        "one step when it does not (a link cap). Memory bound: --ranges x --range-chunk-mb "
                        "buffered (defaults: 9 x 4 MiB = 36 MiB)")
    p.add_argument("--upload-chunk-mb", type=int, default=64, metavar="MB",
                   help="upload blobs larger than this as chunks (one PATCH each) so that a failed request "
                        "resumes instead of restarting the blob; nothing is buffered for it (default 64; 0 = "
                        "one streamed PUT per blob)")
