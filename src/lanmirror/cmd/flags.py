"""The command line's grammar: every subcommand and flag, with the help a user reads.

Kept apart from what the commands do (`commands`) so that the action can parse the same argv the
CLI does: the action's inputs are mapped onto these flags, never onto a second set of options.
"""

from __future__ import annotations

import argparse
from typing import Any

from lanmirror import __version__
from lanmirror.cmd import flaggroups as groups
from lanmirror.cmd.argtypes import (
    HelpFormatter,
    Parser,
    byte_size,
    days,
    host_port,
    iso_date,
    positive_float,
    rate_mbps,
)
from lanmirror.cmd.reportfmt import FORMATS
from lanmirror.node.upstream import HUB_UNAVAILABLE
from lanmirror.ops.mirror.options import ENGINES, LAN_MODES, REFERRERS
from lanmirror.ops.resolve.model import LAN_SELECT, POLICIES, PULL_VIA


def _resolve_search(r: argparse.ArgumentParser) -> None:
    """resolve: which image."""
    search = r.add_argument_group("search", "which image: the tags tried, newest first")
    search.add_argument("--repo", required=True, help="repository, e.g. rocm/sgl-dev")
    search.add_argument("--base-tag", action="append", default=[], metavar="TAG",
                        help="nightly tag prefix, e.g. v0.5.5-rocm700-mi30x; repeat for fallbacks in preference order")
    search.add_argument("--days", type=days, default=7,
                        help="how many days back to look, 1 to 366 (default 7, today included)")
    search.add_argument("--image", metavar="REF",
                        help="skip the search and use this image (still looked up, pulled and reported)")
    search.add_argument("--policy", choices=POLICIES, default="cache-first",
                        help="cache-first: any cached candidate wins, then the LAN's newest, then the Hub's; newest: "
                             "the newest candidate anywhere, from the nearest source (default cache-first)")
    search.add_argument("--fallback", action="append", default=[], metavar="tags,local",
                        help="when nothing is in the window: tags = the newest tag of the base tag's line (any "
                             "version, v0.5.10 after v0.5.9, then the date) in the LAN's and the Hub's tag lists "
                             "(not counted pulls), checked and pulled as usual; local = else the newest image of the "
                             "line this runner holds. Marked FALLBACK in the warnings and JSON `fallback` (default: "
                             "none, exit 1)")
    groups.gpu_arch(search)


def _resolve_sources(r: argparse.ArgumentParser) -> None:
    """resolve: where from, and how each source is reached."""
    sources = r.add_argument_group("sources", "where the image may come from, and how each is reached")
    sources.add_argument("--lan-registry", action="append", default=[], metavar="HOST[:PORT]",
                         help="LAN registry, repeat for several in preference order (default: $LANMIRROR_LAN_REGISTRY "
                              "or $LOCAL_DOCKER_REGISTRY)")
    sources.add_argument("--hub-registry", metavar="HOST[:PORT]",
                         help="upstream registry (default: $LANMIRROR_HUB_REGISTRY or docker.io)")
    sources.add_argument("--lan-select", choices=LAN_SELECT, default="ordered",
                         help="ordered: LAN registries in the given preference order (sites); spread: the replicas "
                              "that hold the chosen tag, ranked per runner by rendezvous hashing of --runner-id, so "
                              "each runner sticks to one and the fleet splits evenly (default ordered)")
    sources.add_argument("--runner-id", metavar="ID",
                         help="this runner's identity for --lan-select spread (default: $RUNNER_NAME, then the host "
                              "name)")
    groups.hub_login(sources)
    groups.access(sources)
    groups.probe_timeouts(sources)
    sources.add_argument("--no-daemon-probe", dest="daemon_probe", action="store_false",
                         help="do not ask the Docker daemon to probe a LAN registry this process cannot reach")


def _resolve_pull(r: argparse.ArgumentParser) -> None:
    """resolve: how the image reaches the daemon."""
    pull = r.add_argument_group("pull", "how the image reaches the daemon, and how long and how slow it may be")
    pull.add_argument("--no-pull", dest="pull", action="store_false", help="only resolve; do not pull")
    pull.add_argument("--pull-via", choices=PULL_VIA, default="auto",
                      help="how the image reaches the daemon: ranges = the daemon pulls from lanmirror's loopback "
                           "endpoint, which reads each layer as parallel ranges from every replica holding it (the "
                           "Hub last); daemon = the daemon pulls directly, one stream per layer; auto (default) = "
                           "ranges, or daemon where the daemon cannot reach this process's loopback and no helper "
                           "container can serve the ranges on its host (--helper-image)")
    pull.add_argument("--helper-image", metavar="REF",
                      help="where the daemon cannot reach this process's loopback (docker outside of docker): the "
                           "lanmirror image, of this very version, that serves the ranges from a short-lived "
                           "container on the daemon's host network (default: lanmirror/lanmirror:<version> on the "
                           "daemon, else on a LAN registry; never pulled from Docker Hub)")
    groups.pull_guards(pull)


def _resolve_trust(r: argparse.ArgumentParser) -> None:
    """resolve: what a copy must prove."""
    trust = r.add_argument_group("trust", "what a copy must prove before it is used")
    trust.add_argument("--no-verify", dest="verify", action="store_false",
                       help="do not compare a LAN copy's digest with the Hub's")
    trust.add_argument("--allow-unverified", action="store_true",
                       help="when Docker Hub refuses the check (401/403: a wrong or planted login), still use a cached "
                            "or LAN copy it cannot confirm, marked UNVERIFIED; without it that fails (exit 1). A Hub "
                            "that is only unreachable never needs this: the copy is used with a warning")
    trust.add_argument("--allow-degraded", action="store_true",
                       help="when a newer candidate could not be probed (an error, not a 404), use the best one "
                            "found anyway, marked degraded, instead of failing")
    trust.add_argument("--require-referrer", action="append", default=[], metavar="TYPE",
                       help="refuse a LAN copy that lacks a referrer of this artifact type (or cosign's sig, att, "
                            "sbom) when the Hub's copy has one: it is stale, and resolve falls through (repeatable)")



def _resolve(sub: Any) -> None:
    """resolve: the job's side, one image ref out."""
    r = sub.add_parser(
        "resolve", help="pick the newest nightly (cache → LAN → Hub) and pull it", formatter_class=HelpFormatter,
        description="Find the newest tag <base-tag>-<YYYYMMDD> of the last N days (UTC), preferring the local "
                    "Docker cache, then the LAN registries, then the Hub; probe with manifest HEADs only (free on "
                    "Docker Hub); verify a LAN copy against the Hub's digest; pull with a stall guard. Prints the "
                    "image to `docker run` on the last line of stdout. Exit 0 found, 1 nothing in the window (or "
                    "nothing could be pulled), 2 bad input.",
        epilog="examples:\n"
               "  # the newest nightly of the last 7 days, from the LAN when it has it, checked against the Hub\n"
               "  lanmirror resolve --repo rocm/sgl-dev --base-tag v0.5.5-rocm700-mi30x --lan-registry 10.0.0.5:5000\n"
               "\n"
               "  # two LAN replicas shared by the fleet, a logged-in Hub, the answer as JSON\n"
               "  DOCKERHUB_USERNAME=ci-bot DOCKERHUB_TOKEN=... lanmirror resolve --repo rocm/sgl-dev \\\n"
               "      --base-tag v0.5.5-rocm700-mi30x --lan-registry 10.0.0.5:5000 --lan-registry 10.0.0.6:5000 \\\n"
               "      --lan-select spread --json",
    )
    for group in (_resolve_search, _resolve_sources, _resolve_pull, _resolve_trust):
        group(r)
    output = r.add_argument_group("output", "what is printed and recorded")
    groups.output(output)
    groups.record(output)
    r.set_defaults(command="resolve")


def _mirror(sub: Any) -> None:
    """mirror: the publisher's side, tags copied to the LAN."""
    m = sub.add_parser(
        "mirror", help="copy nightly tags from the Hub to the LAN registry", formatter_class=HelpFormatter,
        description="Copy tags registry-to-registry (no daemon, no disk): blobs already on the LAN are skipped, "
                    "others are mounted from --mount-from repositories or streamed and hashed on the way; "
                    "manifests are copied byte for byte, the tag's manifest last, only after every blob is "
                    "verified present; the LAN digest must equal the source digest. A broken source "
                    "connection is resumed at the byte where it broke; a blob larger than --upload-chunk-mb "
                    "goes up in chunks and a failed upload request resumes from what the LAN registry holds "
                    "(or restarts the blob if the registry dropped the session). Memory stays bounded: "
                    "--parallel streams of 1 MiB pieces plus the --ranges window, whatever the blob size. "
                    "Exit 0 all mirrored, 1 any failed (the others are still done), 2 bad input.",
        epilog="examples:\n"
               "  # one nightly, as the publishing workflow does after the push\n"
               "  lanmirror mirror --repo rocm/sgl-dev --tag v0.5.5-rocm700-mi30x-20261128 \\\n"
               "      --lan-registry 10.0.0.5:5000\n"
               "\n"
               "  # catch up: every nightly of the last 7 days the Hub has, to two replicas, logged in\n"
               "  DOCKERHUB_USERNAME=ci-bot DOCKERHUB_TOKEN=... lanmirror mirror --repo rocm/sgl-dev \\\n"
               "      --backfill 7 --base-tag v0.5.5-rocm700-mi30x \\\n"
               "      --lan-registry 10.0.0.5:5000 --lan-registry 10.0.0.6:5000",
    )
    tags = m.add_argument_group("tags", "what to copy: tags named, in a file or an artifact, or a backfill window")
    tags.add_argument("--repo", required=True, help="repository, e.g. rocm/sgl-dev")
    groups.tag_sources(tags)
    registries = m.add_argument_group("registries", "where from, where to, and how each is reached")
    registries.add_argument("--lan-registry", action="append", default=[], metavar="HOST[:PORT]",
                            help="target registry; repeat for several, each gets every tag (default: "
                                 "$LANMIRROR_LAN_REGISTRY or $LOCAL_DOCKER_REGISTRY)")
    registries.add_argument("--source-registry", metavar="HOST[:PORT]",
                            help="source registry (default: $LANMIRROR_HUB_REGISTRY or docker.io)")
    registries.add_argument("--lan-mode", choices=LAN_MODES, default="auto",
                            help="push: copy into the LAN registry; proxy: it is a pull-through cache (Distribution "
                                 "proxy mode, a Harbor proxy project) that refuses pushes, so warm it by reading the "
                                 "manifests and every blob through it; auto: ask it (one upload session, cancelled "
                                 "at once) (default auto)")
    registries.add_argument("--mount-from", action="append", default=[], metavar="REPO",
                            help="repository on the LAN registry to mount shared layers from (repeatable)")
    groups.hub_login(registries, "source registry user")
    groups.access(registries)
    copy = m.add_argument_group("copy", "how the bytes move")
    copy.add_argument("--engine", choices=ENGINES, default="registry",
                      help="registry: direct registry-to-registry copy (default); docker: pull, tag, push through "
                           "the daemon (also leaves the image in this host's cache)")
    copy.add_argument("--parallel", type=int, default=4, metavar="N", help="blobs copied at once (default 4)")
    copy.add_argument("--dry-run", action="store_true", help="say what would be copied; copy nothing")
    copy.add_argument("--no-overwrite", dest="overwrite", action="store_false",
                      help="fail a tag that exists on the LAN with a different digest instead of replacing it")
    groups.transfer(copy)
    signatures = m.add_argument_group("signatures", "what follows each image")
    signatures.add_argument("--referrers", choices=REFERRERS, default="all",
                            help="all (default): also copy what refers to each mirrored digest and to each "
                                 "platform's: cosign's sha256-<hex>.sig/.att/.sbom tags and OCI referrers (the "
                                 "source's referrers API, else its fallback tag), written so the LAN lists them (its "
                                 "referrers API, else its fallback tag, merged); none: the image alone")
    signatures.add_argument("--artifact-type", action="append", default=[], metavar="TYPE",
                            help="copy only referrers of this artifact type (repeatable), e.g. application/spdx+json; "
                                 "cosign's tags count as application/vnd.dev.cosign.artifact.{sig,att,sbom}.v1+json")
    output = m.add_argument_group("output", "what is printed and recorded")
    groups.output(output)
    groups.record(output)
    m.set_defaults(command="mirror")


def _prune(sub: Any) -> None:
    """prune: the LAN's (or the runner's) old nightlies deleted."""
    pr = sub.add_parser(
        "prune", help="delete LAN nightlies older than the window", formatter_class=HelpFormatter,
        description="Delete tags <base-tag>-<YYYYMMDD> older than --keep-days from the LAN registry through the "
                    "registry API (by digest; a digest still used by a kept tag is left alone). Tags outside the "
                    "nightly pattern are never touched. The registry only frees disk space when its garbage "
                    "collector runs (`docker-registry garbage-collect CONFIG`, Debian's name for Distribution's "
                    "binary), and needs `storage.delete.enabled: true`.",
    )
    pr.add_argument("--repo", required=True, help="repository, e.g. rocm/sgl-dev")
    pr.add_argument("--lan-registry", metavar="HOST[:PORT]",
                    help="the LAN registry to prune (default: $LANMIRROR_LAN_REGISTRY or $LOCAL_DOCKER_REGISTRY)")
    pr.add_argument("--keep-days", type=days, metavar="DAYS", help="keep nightlies of this many days (1 to 366), "
                                                                    "today included (LAN)")
    pr.add_argument("--local", action="store_true",
                    help="prune this runner's Docker cache instead of the LAN registry: keep the newest --keep "
                         "nightlies of --base-tag and every image a container (running or stopped) uses")
    pr.add_argument("--keep", type=int, metavar="N", help="with --local: how many of the newest nightlies to keep")
    pr.add_argument("--hub-registry", metavar="HOST[:PORT]",
                    help="with --local: the registry in the images' canonical name (default: "
                         "$LANMIRROR_HUB_REGISTRY or docker.io)")
    pr.add_argument("--base-tag", action="append", default=[], metavar="TAG",
                    help="only prune nightlies of these prefixes (default: any <prefix>-<YYYYMMDD> tag)")
    pr.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    groups.common(pr)
    pr.set_defaults(command="prune")


def _doctor(sub: Any) -> None:
    """doctor: the checks a runner admin runs first."""
    d = sub.add_parser(
        "doctor", help="check the daemon, the LAN registries, Hub credentials and quota, clock and disk",
        formatter_class=HelpFormatter,
        description="One command for a runner admin when pulls are slow or failing: is the Docker daemon "
                    "reachable; is each LAN registry reachable from this process and from the daemon (they differ "
                    "inside containers); which registries the daemon treats as insecure; are the Hub credentials "
                    "valid; the Hub's ratelimit-remaining (a free HEAD); clock skew against the registries' Date "
                    "header; free disk in the daemon's data root. Each check prints ok / warn / fail and the fix. "
                    "Exit 0 when nothing failed, 1 otherwise.",
    )
    d.add_argument("--lan-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="a LAN registry to check, from this process and from the daemon (repeatable; default: "
                        "$LANMIRROR_LAN_REGISTRY or $LOCAL_DOCKER_REGISTRY)")
    d.add_argument("--hub-registry", metavar="HOST[:PORT]",
                   help="the upstream registry whose login and ratelimit-remaining are checked (default: "
                        "$LANMIRROR_HUB_REGISTRY or docker.io)")
    groups.hub_login(d)
    d.add_argument("--repo", metavar="REPO",
                   help="also probe this repository (default: Docker's ratelimitpreview/test)")
    d.add_argument("--tag", metavar="TAG", help="tag to probe with --repo")
    d.add_argument("--timeout", type=positive_float, default=3.0, metavar="SECONDS",
                   help="seconds per check (default 3)")
    d.add_argument("--min-free-gb", type=positive_float, default=50.0, metavar="GB",
                   help="warn below this much free disk in the daemon's data root (default 50)")
    groups.common(d)
    d.set_defaults(command="doctor")


def _report(sub: Any) -> None:
    """report: the fleet's pulls, from the records resolve and mirror wrote."""
    rp = sub.add_parser(
        "report", help="aggregate run records: where pulls came from, how long they took, is the LAN worth it",
        formatter_class=HelpFormatter,
        description="Read the records resolve and mirror write (local JSON Lines files, and/or the job logs of a "
                    "workflow's runs on GitHub) and print, per source and registry: pulls, failures, hand-offs, "
                    "p50/p95/max seconds and MB/s; per runner and per day; the counted Hub pulls with the lowest "
                    "ratelimit-remaining seen; and a verdict where the data supports one. Job logs are cached by "
                    "job id, so a second report fetches only new jobs. With $LANMIRROR_RECORD_KEY (the key the "
                    "runs signed with) only signed records count. Exit 0 report written, 1 GitHub failed, 2 bad "
                    "input.",
    )
    rp.add_argument("--records", action="append", default=[], metavar="PATH",
                    help="a JSON Lines record file (repeatable)")
    rp.add_argument("--workflow", action="append", default=[], metavar="FILE",
                    help="read the job logs of this workflow's runs, e.g. ci.yml (repeatable; needs $GITHUB_TOKEN "
                         "with actions:read)")
    rp.add_argument("--event", action="append", default=[], metavar="EVENT",
                    help="with --workflow: read only runs started by this event, e.g. schedule, push (repeatable; "
                         "default: every event, except pull_request and pull_request_target when "
                         "$LANMIRROR_RECORD_KEY is set, since any job of a pull request can print lines)")
    rp.add_argument("--repository", metavar="OWNER/REPO", help="with --workflow (default $GITHUB_REPOSITORY)")
    rp.add_argument("--api-url", metavar="URL", help="GitHub API (default $GITHUB_API_URL or https://api.github.com)")
    rp.add_argument("--days", type=days, default=7, metavar="DAYS", help="the window: records and runs of the last "
                                                                          "N days (default 7)")
    rp.add_argument("--until", type=iso_date, metavar="YYYY-MM-DD",
                    help="the window's last day, UTC (default today): a report of an earlier week")
    rp.add_argument("--format", choices=tuple(FORMATS), default="table",
                    help="table (default); json; markdown for a job summary, with a chart GitHub renders; "
                         "prometheus: node_exporter's textfile format")
    rp.add_argument("--output", metavar="PATH",
                    help="write the report to PATH (replaced in one rename, as node_exporter's textfile collector "
                         "needs) instead of stdout")
    rp.add_argument("--max-jobs", type=int, default=2000, metavar="N",
                    help="read at most N job logs from GitHub per report (default 2000)")
    rp.add_argument("--rate-reserve", type=int, default=50, metavar="N",
                    help="stop fetching when the GitHub API has N requests left, and say so (default 50)")
    rp.add_argument("-v", "--verbose", action="store_true", help="log every job read")
    rp.set_defaults(command="report", json=False)


def _serve(sub: Any) -> None:
    """serve: the node mirror, one per runner host."""
    sv = sub.add_parser(
        "serve", help="run the node mirror: the registry mirror every Docker daemon on this host pulls through",
        formatter_class=HelpFormatter,
        description="A long-running, read-only Docker Hub mirror for the daemons of one host: "
                    "\"registry-mirrors\": [\"http://127.0.0.1:PORT\"] in /etc/docker/daemon.json (docker-in-docker: "
                    "--registry-mirror http://NODE_IP:PORT, with --listen on the node's address). A tag is served only "
                    "when the LAN replicas' digest is the Hub's (a free HEAD); blobs are read once per host, in "
                    "parallel ranges from every LAN replica holding them (the Hub last), into a content-addressed "
                    "disk cache, verified before it is kept. Its logins (LAN and Hub) are its own, so jobs need none. "
                    "Runs until SIGTERM, letting pulls in flight finish. Exit 0 stopped, 2 bad input.",
        epilog="example:\n"
               "  DOCKERHUB_USERNAME=ci-bot DOCKERHUB_TOKEN=... lanmirror serve --listen 127.0.0.1:5080 \\\n"
               "      --cache-dir /var/cache/lanmirror --cache-size 200G --repo rocm/sgl-dev \\\n"
               "      --lan-registry 10.0.0.5:5000 --lan-registry 10.0.0.6:5000",
    )
    sv.add_argument("--listen", type=host_port, default=("127.0.0.1", 5080), metavar="HOST:PORT",
                    help="address to listen on (default 127.0.0.1:5080; a node address for docker-in-docker pods)")
    sv.add_argument("--cache-dir", required=True, metavar="DIR", help="where the cache lives (created, mode 0700)")
    sv.add_argument("--cache-size", type=byte_size, default=100 << 30, metavar="SIZE",
                    help="the cache's cap, e.g. 200G; least recently used blobs go first (default 100G)")
    sv.add_argument("--repo", action="append", required=True, metavar="REPO",
                    help="a repository this mirror serves, e.g. rocm/sgl-dev (repeatable); any other gets 404, and "
                         "the daemon pulls it from the Hub itself")
    sv.add_argument("--lan-registry", action="append", default=[], metavar="HOST[:PORT]",
                    help="a LAN replica to read from (repeatable; default $LANMIRROR_LAN_REGISTRY)")
    sv.add_argument("--hub-registry", metavar="HOST[:PORT]",
                    help="the upstream registry (default: $LANMIRROR_HUB_REGISTRY or docker.io)")
    sv.add_argument("--lan-select", choices=LAN_SELECT, default="spread",
                    help="spread (default): the LAN replicas ranked for this node by rendezvous hashing of "
                         "--runner-id, so the nodes of a fleet split evenly over them; ordered: in the given order")
    sv.add_argument("--runner-id", metavar="ID", help="this node's identity for spread (default: the host name)")
    sv.add_argument("--hub-unavailable", choices=HUB_UNAVAILABLE, default="lan",
                    help="when the Hub cannot be reached (not when it refuses): lan = serve the digest every LAN "
                         "replica agrees on, with a warning; fail = refuse, and the daemon falls back to the Hub "
                         "itself (default lan)")
    sv.add_argument("--probe-timeout", type=positive_float, default=3.0, metavar="SECONDS",
                    help="seconds a LAN replica gets to answer a HEAD (default 3)")
    sv.add_argument("--hub-timeout", type=positive_float, default=15.0, metavar="SECONDS",
                    help="seconds the Hub gets to answer a HEAD before it counts as unavailable (default 15)")
    sv.add_argument("--min-pull-rate", type=rate_mbps, default=5.0, metavar="MB/S",
                    help="hand a blob's read from a LAN replica that stays slower than this for --pull-rate-window "
                         "seconds to the next source, from the byte reached (default 5; 0 = no floor)")
    sv.add_argument("--pull-rate-window", type=positive_float, default=30.0, metavar="SECONDS",
                    help="how long a source may stay below --min-pull-rate (default 30)")
    sv.add_argument("--record-file", metavar="PATH",
                    help="append one record per pull served and per blob read from upstream to this JSON Lines "
                         "file, which `lanmirror report --records` reads (default $LANMIRROR_RECORD_FILE; "
                         "$LANMIRROR_RECORD_KEY signs them)")
    sv.add_argument("--grace", type=positive_float, default=60.0, metavar="SECONDS",
                    help="on SIGTERM, how long pulls in flight may take to finish (default 60)")
    groups.hub_login(sv)
    groups.access(sv)
    sv.add_argument("-v", "--verbose", action="store_true", help="log every request decision")
    sv.set_defaults(command="serve", json=False)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="lanmirror", formatter_class=HelpFormatter,
        description="Keep nightly container images on the LAN: mirror them from Docker Hub to a LAN registry, "
                    "and resolve the newest one for a CI job without spending Docker Hub pull quota.",
    )
    parser.add_argument("--version", action="version", version=f"lanmirror {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    for build in (_resolve, _mirror, _prune, _doctor, _report, _serve):
        build(sub)
    return parser
