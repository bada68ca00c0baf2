"""What each subcommand does, a few lines each: settings → clients (`wiring`) → one operation →
an `Outcome`. Nothing here prints: the CLI prints an outcome, the action turns it into outputs,
annotations and a job summary. Both run these same functions on the same parsed flags."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lanmirror.authn import Credentials
from lanmirror.authn.keychain import override_credentials
from lanmirror.cmd.progress import Progress
from lanmirror.cmd.reportfmt import FORMATS
from lanmirror.cmd.settings import hub_registry, lan_registries, split_list, split_tags
from lanmirror.cmd.wiring import clients_for, doctor_clients
from lanmirror.errors import BadInput
from lanmirror.name import Reference, normalize_registry, parse, repository_on, validate_repository
from lanmirror.ops.doctor import Check, run_checks
from lanmirror.ops.doctor import to_json as doctor_json
from lanmirror.ops.mirror import MirrorOptions, MirrorReport, mirror, mirror_to_all
from lanmirror.ops.prune import PruneReport, prune
from lanmirror.ops.prune_local import prune_local
from lanmirror.ops.resolve import Attempt, NothingFound, Resolution, ResolveOptions, resolve
from lanmirror.ops.resolve.spread import runner_identity
from lanmirror.records.scan import Scan
from lanmirror.remote.ranges import RangeSettings
from lanmirror.report import collect
from lanmirror.report.joblogs import RunsReader
from lanmirror.sources.arch import ArchRule, base_tags_for, image_override, needs_arch, parse_map
from lanmirror.sources.gather import gather_tags

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DATED = re.compile(r"-20\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")  # a nightly's date at the end
log = logging.getLogger("lanmirror")


@dataclass
class Outcome:
    """A command's result: its exit code, its JSON document, its one plain stdout line (if any),
    and the result object itself for the action's outputs and summary."""

    code: int
    json: dict[str, Any]
    text: str = ""
    result: Resolution | MirrorReport | PruneReport | list[Check] | None = None
    error: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    registries: list[str] = field(default_factory=list)  # the LAN registries in play
    source: str = ""
    # Pulls Docker Hub (or the source registry) counted for this run, measured (None: not known).
    hub_pulls: int | None = None


def gpu_choice(args: argparse.Namespace) -> tuple[str, list[str], str | None, dict[str, Credentials]]:
    """(architecture, base tags, forced image, that image's own login by registry) from the arch
    flags; ("", --base-tag, --image, {}) when nothing asks for an architecture."""
    base_tags, per_arch = split_tags(args.base_tag, "--base-tag"), split_list(args.base_tag_for)
    for base in base_tags:
        if DATED.search(base):
            log.warning("--base-tag %s already ends in a date: the search looks for %s-<YYYYMMDD>. Give the prefix "
                        "(%s), or --image to take that one tag", base, base, DATED.sub("", base))
    image_env = args.image_env or ""
    if not args.gpu_arch and not needs_arch(base_tags, per_arch, image_env):
        return "", base_tags, args.image, {}
    if args.gpu_arch:
        arch, how = args.gpu_arch.strip().lower(), "--gpu-arch"
    else:
        runner = runner_identity(args.runner_id or None)
        arch, how = ArchRule(args.arch_pattern, parse_map(args.arch_map)).detect(runner), f"runner {runner}"
    tags = base_tags_for(arch, base_tags, per_arch) if (base_tags or per_arch) else []
    image = args.image
    logins: dict[str, Credentials] = {}
    forced = image_override(image_env, arch, os.environ) if image_env and not image else None
    if forced:
        variable, image = forced
        login = override_credentials(variable)
        if login is not None:
            logins[parse(image, default_registry=hub_registry(args.hub_registry)).registry] = login
        log.info("image forced by $%s for %s: %s%s", variable, arch, image,
                 f" (login from ${variable}_USERNAME)" if login else "")
    log.info("GPU architecture %s (%s); base tags %s", arch, how, ", ".join(tags) or "-")
    return arch, tags, image, logins


def resolve_command(args: argparse.Namespace) -> Outcome:
    hub = normalize_registry(hub_registry(args.hub_registry))
    arch, base_tags, image, logins = gpu_choice(args)
    opts = ResolveOptions(
        repo=args.repo, base_tags=base_tags, days=args.days,
        lan_registries=lan_registries(args.lan_registry), hub_registry=hub, policy=args.policy, pull=args.pull,
        verify=args.verify, image=image, probe_timeout=args.probe_timeout, stall_timeout=args.stall_timeout,
        pull_timeout=args.pull_timeout, budget=args.budget, hub_timeout=args.hub_timeout,
        daemon_probe=args.daemon_probe,
        allow_degraded=args.allow_degraded, allow_unverified=args.allow_unverified, pull_via=args.pull_via,
        min_pull_rate=args.min_pull_rate, pull_rate_window=args.pull_rate_window,
        lan_select=args.lan_select, runner_id=args.runner_id or "", fallback=split_list(args.fallback),
        helper_image=args.helper_image or "",
        require_referrers=split_list(args.require_referrer))
    prog = Progress("pull")
    with clients_for(args, hub, extra=logins) as clients:
        try:
            res = resolve(opts, clients, on_progress=lambda done, total, _s: prog.set(done, total),
                          on_event=lambda msg: log.info("%s", msg))
        except NothingFound as exc:  # the caller prints it, after the run's record
            return Outcome(EXIT_FAILED, {"error": str(exc), "attempts": [a.__dict__ for a in exc.attempts],
                                         **({"gpu_arch": arch} if arch else {})},
                           error=str(exc), attempts=exc.attempts, registries=opts.lan_registries,
                           hub_pulls=clients.counted_pulls(hub))
        finally:
            prog.close()
        hub_pulls = clients.counted_pulls(hub)
    log.info("resolved %s from %s (%s, %s day(s) old, %s)", res.image, res.source, res.digest[:19],
             res.age_days if res.age_days is not None else "?",
             {True: "verified against the Hub", False: "UNVERIFIED", None: "no verification"}[res.verified])
    return Outcome(EXIT_OK, {**res.to_json(), "hub_pulls": hub_pulls, **({"gpu_arch": arch} if arch else {})},
                   res.image, res, registries=opts.lan_registries, hub_pulls=hub_pulls)


def range_settings(args: argparse.Namespace) -> RangeSettings:
    return RangeSettings(threshold=args.range_threshold_mb << 20, chunk_size=args.range_chunk_mb << 20,
                         window=args.ranges,
                         switch_below=args.range_below_mbps * 1e6 if args.range_below_mbps > 0 else None)


def upload_chunk(mb: int) -> int:
    if mb < 0:
        raise BadInput(f"--upload-chunk-mb {mb}: give 0 (one PUT per blob) or a size in MB")
    return mb << 20


def lan_targets(flags: list[str] | None) -> list[str]:
    found = [normalize_registry(r) for r in lan_registries(flags)]
    if not found:
        raise BadInput("no LAN registry: give --lan-registry HOST[:PORT] or set LANMIRROR_LAN_REGISTRY")
    return list(dict.fromkeys(found))


def mirror_command(args: argparse.Namespace) -> Outcome:
    source = normalize_registry(hub_registry(args.source_registry))
    lans = lan_targets(args.lan_registry)
    with clients_for(args, source) as clients, _Bars(len(lans) > 1) as bars:
        tags = gather_tags(tags=split_tags(args.tag, "--tag"), tag_file=args.tag_file, from_artifact=args.from_artifact,
                           run_id=args.run_id, workflow=args.workflow, any_branch=args.any_branch,
                           backfill_days=args.backfill,
                           base_tags=split_tags(args.base_tag, "--base-tag"), source=clients.registry(source),
                           repo=repository_on(source, args.repo))
        if not tags and args.backfill:
            log.info("nothing to mirror: no nightly in the window on %s", source)
            return Outcome(EXIT_OK, MirrorReport([]).to_json(), result=MirrorReport([]), registries=lans,
                           source=source)
        opts = MirrorOptions(repo=args.repo, tags=tags, lan_registry=lans[0], source_registry=source,
                             engine=args.engine, dry_run=args.dry_run, overwrite=args.overwrite,
                             parallel=args.parallel, mount_from=split_list(args.mount_from),
                             ranges=range_settings(args), upload_chunk=upload_chunk(args.upload_chunk_mb),
                             lan_mode=args.lan_mode, referrers=args.referrers,
                             artifact_types=split_list(args.artifact_type))
        if len(lans) == 1:
            report = mirror(opts, clients, on_bytes=bars.for_target(lans[0]))
        else:  # one read of each source blob for all the targets that lack it
            report = mirror_to_all(opts, lans, clients,
                                   on_bytes=lambda lan, tag, done, total: bars.for_target(lan)(tag, done, total))
        source_pulls = clients.counted_pulls(source)
    for r in report.results:
        for line in r.plan:
            log.info("  %s: %s", r.tag, line)
        where = f" → {r.registry}" if len(lans) > 1 else ""
        log.info("%-10s %s%s %s%s", r.status, r.tag, where, r.digest[:19], f"  ({r.error})" if r.error else "")
    return Outcome(EXIT_OK if report.ok else EXIT_FAILED, report.to_json(), result=report, registries=lans,
                   source=source, hub_pulls=source_pulls)


class _Bars:
    """One progress line per tag (and target, when there are several), closed at the end."""

    def __init__(self, name_targets: bool) -> None:
        self.name_targets = name_targets
        self.bars: dict[str, Progress] = {}

    def for_target(self, target: str) -> Callable[[str, int, int], None]:
        def on_bytes(tag: str, done: int, total: int) -> None:
            label = f"mirror {tag}" + (f" → {target}" if self.name_targets else "")
            self.bars.setdefault(label, Progress(label, total)).set(done, total)

        return on_bytes

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self.bars.values():
            bar.close()


def prune_command(args: argparse.Namespace) -> Outcome:
    if args.local:
        return prune_local_command(args)
    if args.keep_days is None:
        raise BadInput("prune needs --keep-days N (the LAN registry), or --local --keep N (this runner's cache)")
    lan = lan_targets([args.lan_registry] if args.lan_registry else None)[0]
    with clients_for(args, None) as clients:
        report = prune(clients.registry(lan), args.repo, args.keep_days,
                       base_tags=split_tags(args.base_tag, "--base-tag"), dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    log.info("%s %d tag(s); kept %d; %d old tag(s) share a digest with a kept tag; %d non-nightly tag(s) ignored",
             verb, len(report.deleted), len(report.kept), len(report.shared), len(report.ignored))
    if report.deleted and not args.dry_run:
        log.info("the registry frees the space when its garbage collector runs "
                 "(`docker-registry garbage-collect /etc/docker/registry/config.yml`)")
    return Outcome(EXIT_OK, report.to_json(), result=report, registries=[lan])


def prune_local_command(args: argparse.Namespace) -> Outcome:
    hub = normalize_registry(hub_registry(args.hub_registry))
    canonical = Reference(hub, repository_on(hub, validate_repository(args.repo)), tag="latest").familiar_repository
    with clients_for(args, hub) as clients:
        engine = clients.engine()
        assert engine is not None
        report = prune_local(engine, canonical, split_tags(args.base_tag, "--base-tag") or [""],
                             args.keep if args.keep is not None else 0, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    log.info("%s %d image(s) (%.1f MB%s); kept %d newest; %d in use by containers", verb, len(report.removed),
             report.bytes_freed / 1e6, ", estimated" if args.dry_run else "", len(report.kept), len(report.in_use))
    return Outcome(EXIT_OK, report.to_json(), result=None)


def doctor_command(args: argparse.Namespace) -> Outcome:
    hub = normalize_registry(hub_registry(args.hub_registry))
    with doctor_clients(args, hub) as clients:
        checks = run_checks(clients, lan_registries=lan_registries(args.lan_registry), hub_registry=hub,
                            repo=args.repo, tag=args.tag, timeout=args.timeout, min_free_gb=args.min_free_gb)
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():4}  {c.name:{width}}  {c.detail}")
        if c.fix:
            lines.append(f"{'':4}  {'':{width}}  fix: {c.fix}")
    failed = any(c.status == "fail" for c in checks)
    return Outcome(EXIT_FAILED if failed else EXIT_OK, doctor_json(checks), "\n".join(lines), checks)


def report_command(args: argparse.Namespace) -> Outcome:
    if not args.records and not args.workflow:
        raise BadInput("nothing to report on: give --records FILE (a record file) and/or --workflow FILE "
                       "(the job logs of a workflow's runs on GitHub)")
    key = os.environ.get("LANMIRROR_RECORD_KEY", "")
    until = args.until or dt.datetime.now(dt.timezone.utc).date()
    found, read = Scan(), None
    collect.from_files(args.records, key, found)
    if args.workflow:
        reader = RunsReader(args.repository or os.environ.get("GITHUB_REPOSITORY", ""),
                            os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or "",
                            args.api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com",
                            reserve=args.rate_reserve, max_jobs=args.max_jobs, key=key, events=args.event or None)
        read = reader.read(args.workflow, until - dt.timedelta(days=args.days - 1), until)
        if read.stopped:
            log.warning("GitHub: %s", read.stopped)
        collect.from_runs(read, key, found)
    rep = collect.report(found, args.days, until, read)
    text = FORMATS[args.format](rep)
    if args.output:
        write_atomically(args.output, text)
        log.info("wrote the %s report to %s", args.format, args.output)
        text = ""
    return Outcome(EXIT_OK, rep.to_json(), text.rstrip("\n"))


def write_atomically(path: str, text: str) -> None:
    """Replace `path` in one rename: node_exporter's textfile collector must never read half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".lanmirror-report-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def serve_command(args: argparse.Namespace) -> Outcome:
    from pathlib import Path

    try:
        from lanmirror.node.service import serve
    except ImportError as exc:  # aiohttp is an extra: the actions never need it
        raise BadInput(f"lanmirror serve needs aiohttp ({exc}): pip install 'lanmirror[serve]'") from None
    from lanmirror.node.upstream import Upstream

    hub = normalize_registry(hub_registry(args.hub_registry))
    repos = [validate_repository(r) for r in split_tags(args.repo, "--repo")]
    lans = [normalize_registry(r) for r in lan_registries(args.lan_registry)]
    if args.lan_select == "spread":
        import socket

        from lanmirror.ops.resolve.spread import rendezvous
        lans = rendezvous(args.runner_id or socket.gethostname(), lans)
    clients = clients_for(args, hub, daemon=False)
    upstream = Upstream(clients, lans, hub, clients.policy, probe_timeout=args.probe_timeout,
                        hub_timeout=args.hub_timeout, hub_unavailable=args.hub_unavailable,
                        min_rate=args.min_pull_rate * 1e6, rate_window=args.pull_rate_window)
    host, port = args.listen
    try:
        serve(upstream, repos, Path(args.cache_dir), args.cache_size, host, port, grace=args.grace,
              record_file=args.record_file or os.environ.get("LANMIRROR_RECORD_FILE"))
    finally:
        clients.close()
    return Outcome(EXIT_OK, {"stopped": True})


COMMANDS: dict[str, Callable[[argparse.Namespace], Outcome]] = {
    "resolve": resolve_command, "mirror": mirror_command, "prune": prune_command, "doctor": doctor_command,
    "report": report_command, "serve": serve_command,
}
