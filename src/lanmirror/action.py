"""GitHub Actions entry point: `python -m lanmirror.action resolve|mirror`.

Inputs arrive as INPUT_<NAME> environment variables (the composite actions map each input there
through `env:`, never by interpolating it into shell code). Secrets are masked before anything
else runs; outputs, annotations and the job summary go through actions-toolkit.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from actions_toolkit import core

from lanmirror.engine import Engine, plain_http_allowed
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.mirror import MirrorOptions, mirror
from lanmirror.progress import Progress
from lanmirror.reference import normalize_registry, repository_on
from lanmirror.registry import Registry
from lanmirror.resolve import NothingFound, ResolveOptions, resolve
from lanmirror.settings import hub_credentials, hub_registry, insecure_list, lan_registries, split_list
from lanmirror.summary import failure_summary, mirror_summary, resolve_summary, write
from lanmirror.tagsource import gather_tags
from lanmirror.transport import Transport, is_insecure


def _in(name: str) -> str:
    return str(core.get_input(name.replace("-", "_")))


def _bool(name: str, default: bool) -> bool:
    value = _in(name)
    if not value:
        return default
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    raise BadInput(f"input {name}: expected true or false, got {value!r}")


def _num(name: str, default: float, kind: type = float) -> float:
    value = _in(name)
    if not value:
        return default
    try:
        return float(kind(value))
    except ValueError:
        raise BadInput(f"input {name}: expected a number, got {value!r}") from None


def _mask_secrets(*names: str) -> None:
    for name in names:
        value = _in(name)
        if value:
            core.set_secret(value)


def run_resolve() -> int:
    _mask_secrets("dockerhub-token")
    hub = hub_registry(_in("hub-registry"))
    creds = hub_credentials(normalize_registry(hub), _in("dockerhub-username") or None,
                            _in("dockerhub-token") or None)
    opts = ResolveOptions(
        repo=_in("repo"), base_tags=split_list(_in("base-tag")), days=int(_num("days", 7, int)),
        lan_registries=lan_registries(split_list(_in("lan-registry")) or None), hub_registry=hub,
        policy=_in("policy") or "cache-first", pull=_bool("pull", True), verify=_bool("verify", True),
        image=_in("image") or None, probe_timeout=_num("probe-timeout", 2.0),
        stall_timeout=_num("stall-timeout", 120.0), pull_timeout=_num("pull-timeout", 3600.0),
        hub_credentials=creds, insecure_registries=insecure_list(_in("insecure-registries")),
    )
    prog = Progress("pull")
    try:
        res = resolve(opts, engine=Engine(), on_progress=lambda d, t, _s: prog.set(d, t),
                      on_event=lambda m: core.info(m))
    except NothingFound as exc:
        write(failure_summary("resolve-image: no image", str(exc), exc.attempts))
        core.error(str(exc), title="resolve-image")
        return 1
    for warning in res.warnings:
        core.warning(warning, title="resolve-image")
    if res.source == "hub" and opts.lan_registries:
        core.notice(f"{res.image} came from {res.registry}, not the LAN: mirror it to save Hub pulls",
                    title="resolve-image fell back to the Hub")
    for key, value in res.outputs().items():
        core.set_output(key, value)
    write(resolve_summary(res))
    core.info(f"image={res.image}")
    return 0


def run_mirror() -> int:
    _mask_secrets("github-token", "dockerhub-token")
    source = normalize_registry(hub_registry(_in("source-registry")))
    lans = lan_registries(split_list(_in("lan-registry")) or None)
    if not lans:
        raise BadInput("input lan-registry is empty and LANMIRROR_LAN_REGISTRY is not set")
    creds = hub_credentials(source, _in("dockerhub-username") or None, _in("dockerhub-token") or None)
    if _in("github-token"):
        os.environ["GITHUB_TOKEN"] = _in("github-token")
    repo = _in("repo")
    insecure = plain_http_allowed(insecure_list(_in("insecure-registries")), [source, lans[0]])
    src = Registry(Transport(source, insecure=is_insecure(source, insecure), credentials=creds))
    run_id = _in("run-id")
    tags = gather_tags(tags=split_list(_in("tags")), tag_file=_in("tag-file") or None,
                       from_artifact=_in("from-artifact") or None, run_id=int(run_id) if run_id else None,
                       workflow=_in("workflow") or None, backfill_days=int(_num("backfill-days", 0, int)) or None,
                       base_tags=split_list(_in("base-tag")), source=src, repo=repository_on(source, repo))
    engine_name = _in("engine") or "registry"
    report_ok = True
    outputs: dict[str, object] = {"mirrored": [], "bytes": 0, "skipped": []}
    if tags:
        bars: dict[str, Progress] = {}
        report = mirror(MirrorOptions(repo=repo, tags=tags, lan_registry=lans[0], source_registry=source,
                                      engine=engine_name, dry_run=_bool("dry-run", False),
                                      overwrite=_bool("overwrite", True), source_credentials=creds,
                                      insecure_registries=insecure),
                        engine=Engine() if engine_name == "docker" else None,
                        on_bytes=lambda t, d, n: bars.setdefault(t, Progress(f"mirror {t}", n)).set(d, n))
        for r in report.results:
            if not r.ok:
                core.error(f"{r.tag}: {r.error}", title="mirror-to-lan")
            elif r.status == "replaced":
                core.warning(f"{r.tag}: replaced {r.previous_digest} with {r.digest}", title="mirror-to-lan")
        write(mirror_summary(report, source, lans[0]))
        outputs = {"mirrored": report.mirrored(), "bytes": report.bytes, "skipped": report.skipped()}
        report_ok = report.ok
    else:
        core.notice("nothing to mirror: no tag given and none found in the window", title="mirror-to-lan")
    core.set_output("mirrored", json.dumps(outputs["mirrored"]))
    core.set_output("bytes", str(outputs["bytes"]))
    core.set_output("skipped", json.dumps(outputs["skipped"]))
    return 0 if report_ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    commands = {"resolve": run_resolve, "mirror": run_mirror}
    if len(args) != 1 or args[0] not in commands:
        core.error(f"usage: python -m lanmirror.action {'|'.join(commands)}")
        return 2
    try:
        return commands[args[0]]()
    except BadInput as exc:
        core.error(f"bad input: {exc}", title=f"lanmirror {args[0]}")
        return 2
    except LanmirrorError as exc:
        core.error(str(exc), title=f"lanmirror {args[0]}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
