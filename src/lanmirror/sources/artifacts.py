"""Tags handed over by a GitHub Actions artifact (the publish job saves the tag, the mirror job
reads it), fetched with PyGithub and unpacked defensively: an artifact is untrusted input."""

from __future__ import annotations

import fnmatch
import io
import logging
import os
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.sources.tagfile import read_tag_file
from lanmirror.transport.session import NoNetrcSession

log = logging.getLogger("lanmirror.sources.artifacts")

MAX_ZIP_BYTES = 8 * 1024 * 1024
MAX_MEMBERS = 64
MAX_UNPACKED_BYTES = 1024 * 1024


def safe_extract(data: bytes, dest: Path) -> list[Path]:
    """Unpack a zip refusing absolute paths, `..`, symlinks, too many or too large members."""
    if len(data) > MAX_ZIP_BYTES:
        raise BadInput(f"artifact zip is {len(data)} bytes; more than {MAX_ZIP_BYTES} is refused")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BadInput("artifact is not a valid zip file") from None
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise BadInput(f"artifact holds {len(members)} files; at most {MAX_MEMBERS} are accepted")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise BadInput(f"artifact unpacks to more than {MAX_UNPACKED_BYTES} bytes; refused")
    out = []
    root = dest.resolve()
    for m in members:
        name = PurePosixPath(m.filename.replace("\\", "/"))
        mode = m.external_attr >> 16
        if name.is_absolute() or ".." in name.parts or m.filename.startswith(("/", "\\")) or ":" in m.filename:
            raise BadInput(f"artifact member {m.filename!r} escapes the extraction folder: refused")
        if stat.S_ISLNK(mode):
            raise BadInput(f"artifact member {m.filename!r} is a symlink: refused")
        target = (root / name).resolve()
        if root not in target.parents and target != root:
            raise BadInput(f"artifact member {m.filename!r} escapes the extraction folder: refused")
        if m.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(m) as src:
            content = src.read(MAX_UNPACKED_BYTES + 1)
        if len(content) > MAX_UNPACKED_BYTES:
            raise BadInput(f"artifact member {m.filename!r} is too large")
        target.write_bytes(content)
        out.append(target)
    return out


def _github(token: str, api_url: str) -> Any:
    from github import Auth, Github

    return Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"), retry=None, timeout=30, lazy=True)


# Events whose runs only ever build the repository's own code; a pull_request run (a fork's, or a
# branch's) could have published any tags it liked in its artifact.
TRUSTED_EVENTS = frozenset({"push", "schedule", "workflow_dispatch"})
MAX_RUNS_SCANNED = 100


def latest_trusted_run(repo: Any, workflow: str, any_branch: bool = False) -> Any:
    """The newest successful run of `workflow` on the default branch of this very repository, from
    push, schedule or workflow_dispatch (any run with `any_branch`)."""
    wf = repo.get_workflow(workflow)
    if any_branch:
        return next(iter(wf.get_runs(status="success")), None)
    branch = repo.default_branch
    for index, run in enumerate(wf.get_runs(status="success", branch=branch)):
        if index >= MAX_RUNS_SCANNED:
            break
        head = getattr(run.head_repository, "full_name", None)
        if run.event in TRUSTED_EVENTS and run.head_branch == branch and head == repo.full_name:
            return run
        log.info("skipping run %s of %s: %s on %s from %s is not a default-branch push/schedule/dispatch",
                 run.id, workflow, run.event, run.head_branch, head)
    return None


def tags_from_artifact(pattern: str, dest: Path, *, token: str | None = None, repository: str | None = None,
                       api_url: str | None = None, run_id: int | None = None, workflow: str | None = None,
                       any_branch: bool = False) -> list[str]:
    """Download every artifact of one workflow run whose name matches `pattern` and read its tags.

    The run is `run_id`, else the latest trusted successful run of `workflow` (see
    `latest_trusted_run`), else the current run (GITHUB_RUN_ID). Credentials and addresses default
    to the Actions environment."""
    token = token or os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
    repository = repository or os.environ.get("GITHUB_REPOSITORY")
    api_url = api_url or os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    if not token:
        raise BadInput("--from-artifact needs a token: set GITHUB_TOKEN (in Actions: the github-token input)")
    if not repository or "/" not in repository:
        raise BadInput("--from-artifact needs GITHUB_REPOSITORY=OWNER/REPO")
    from github import GithubException

    gh = _github(token, api_url)
    try:
        repo = gh.get_repo(repository)
        if run_id is None and workflow:
            run = latest_trusted_run(repo, workflow, any_branch)
            if run is None:
                where = "" if any_branch else " from push, schedule or workflow_dispatch on the default branch"
                raise LanmirrorError(f"workflow {workflow} has no successful run{where} in {repository}"
                                     + ("" if any_branch else "; --any-branch accepts any run"))
        else:
            rid = run_id or int(os.environ.get("GITHUB_RUN_ID") or 0)
            if not rid:
                raise BadInput("--from-artifact needs --run-id, --workflow, or GITHUB_RUN_ID")
            run = repo.get_workflow_run(rid)
        matches = [a for a in run.get_artifacts() if fnmatch.fnmatchcase(a.name, pattern)]
    except GithubException as exc:
        raise LanmirrorError(f"GitHub API ({api_url}): HTTP {exc.status} while looking up artifacts of "
                             f"{repository}") from None
    if not matches:
        raise LanmirrorError(f"no artifact named {pattern!r} in run {run.id} of {repository}")
    tags: list[str] = []
    for art in matches:
        if art.expired:
            raise LanmirrorError(f"artifact {art.name!r} of run {run.id} has expired; rerun the publish job or "
                                 "pass --tag")
        # GitHub answers with a 302 to short-lived storage; requests drops the Authorization header
        # when the redirect changes host, so the token never reaches the storage host, and the
        # session reads no ~/.netrc, which plain requests would consult for that new host.
        with NoNetrcSession() as session:
            resp = session.get(art.archive_download_url, headers={"Authorization": f"Bearer {token}",
                                                                   "Accept": "application/vnd.github+json"},
                               timeout=(10, 60), stream=True)
            if resp.status_code != 200:
                raise LanmirrorError(f"downloading artifact {art.name!r} failed with HTTP {resp.status_code}")
            data = resp.raw.read(MAX_ZIP_BYTES + 1, decode_content=True)
        folder = dest / f"artifact-{art.id}"
        folder.mkdir(parents=True, exist_ok=True)
        safe_extract(data, folder)
        log.info("artifact %s (run %s): read tags from %s", art.name, run.id, folder)
        tags += read_tag_file(folder) if any(folder.rglob("*.txt")) else _first_file_tags(folder)
    return list(dict.fromkeys(tags))


def _first_file_tags(folder: Path) -> list[str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise BadInput("artifact is empty")
    return [t for f in files for t in read_tag_file(f)]
