"""Image references: parsing, normalisation and nightly tag candidates.

Pure functions, no I/O. Everything that ends up in a registry URL or a `docker` call goes
through here first, so the grammar checks below are the project's input firewall: tags come
from files, artifacts and dispatch inputs, and must never carry anything else into a URL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from lanmirror.errors import BadInput

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"

# OCI distribution spec grammar.
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
# host, host:port, IPv4:port, [IPv6]:port; "localhost" counts as a host.
_HOST_RE = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$"
)
NIGHTLY_DATE_FORMAT = "%Y%m%d"
MAX_DAYS = 366


def validate_tag(tag: str) -> str:
    """Return `tag` if it matches the OCI tag grammar, else raise BadInput naming it."""
    if not isinstance(tag, str) or not TAG_RE.fullmatch(tag):
        raise BadInput(
            f"invalid tag {tag!r}: a tag is 1-128 characters of [A-Za-z0-9_.-] and may not start with '.' or '-'"
        )
    return tag


def validate_repository(repo: str) -> str:
    """Return `repo` if it is a valid repository path (lowercase components separated by '/')."""
    if not isinstance(repo, str) or not repo or len(repo) > 255 or not REPOSITORY_RE.fullmatch(repo):
        raise BadInput(
            f"invalid repository {repo!r}: use lowercase path components such as 'rocm/sgl-dev'"
        )
    return repo


def validate_digest(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise BadInput(f"invalid digest {digest!r}: expected 'sha256:' followed by 64 hex digits")
    return digest


def normalize_registry(registry: str) -> str:
    """Validate a registry address (HOST[:PORT]); map the Docker Hub aliases to `docker.io`.

    A URL scheme (http://, https://) is accepted and dropped, since users paste them; a path,
    a query or any other scheme is refused because it would silently address a different host.
    """
    value = (registry or "").strip()
    if not value:
        raise BadInput("empty registry address: give HOST[:PORT], for example 10.0.0.5:5000")
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", value)
    if m:
        if m.group(1).lower() not in ("http", "https"):
            raise BadInput(f"invalid registry {registry!r}: only http:// or https:// may prefix HOST[:PORT]")
        value = m.group(2).rstrip("/")
    if not _HOST_RE.fullmatch(value):
        raise BadInput(f"invalid registry {registry!r}: expected HOST[:PORT] with no path, e.g. 10.0.0.5:5000")
    if ":" in value and not value.startswith("["):
        port = int(value.rsplit(":", 1)[1])
        if not 0 < port < 65536:
            raise BadInput(f"invalid registry {registry!r}: port out of range")
    lowered = value.lower()
    if lowered in ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"):
        return DOCKER_HUB
    return lowered


def repository_on(registry: str, repo: str) -> str:
    """The repository path on `registry`: Docker Hub keeps official images under `library/`."""
    return validate_repository(f"library/{repo}" if registry == DOCKER_HUB and "/" not in repo else repo)


def api_host(registry: str) -> str:
    """The host that actually serves the /v2/ API for `registry`."""
    return DOCKER_HUB_API if registry == DOCKER_HUB else registry


@dataclass(frozen=True)
class Reference:
    """A fully qualified image reference.

    `registry` is normalised (Docker Hub is always `docker.io`); `repository` carries the
    implicit `library/` for Docker Hub official images. At least one of tag/digest is set.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        validate_repository(self.repository)
        if self.tag is not None:
            validate_tag(self.tag)
        if self.digest is not None:
            validate_digest(self.digest)

    @property
    def identifier(self) -> str:
        """What goes after /manifests/ in a registry URL: the digest if pinned, else the tag."""
        if self.digest:
            return self.digest
        return self.tag or "latest"

    @property
    def familiar_repository(self) -> str:
        """Repository as `docker` prints it: Docker Hub without host or `library/`."""
        if self.registry == DOCKER_HUB:
            prefix = "library/"
            repo = self.repository[len(prefix):] if self.repository.startswith(prefix) else self.repository
            return repo
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.familiar_repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag=tag)

    def on(self, registry: str) -> Reference:
        """The same repository and tag on another registry (how a mirror addresses it)."""
        return Reference(normalize_registry(registry), self.repository, self.tag, self.digest)


def _looks_like_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def parse(ref: str, default_registry: str = DOCKER_HUB) -> Reference:
    """Parse `[HOST[:PORT]/]REPO[:TAG][@DIGEST]` the way the Docker CLI does.

    The first path component is a registry when it contains '.' or ':' or is 'localhost'.
    Raises BadInput with the offending input in the message.
    """
    if not isinstance(ref, str) or not ref.strip():
        raise BadInput("empty image reference: expected REPO[:TAG], e.g. rocm/sgl-dev:v0.5.5-rocm700-mi30x-20261128")
    text = ref.strip()
    if any(c.isspace() for c in text):
        raise BadInput(f"invalid image reference {ref!r}: contains whitespace")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        try:
            validate_digest(digest)
        except BadInput as exc:
            raise BadInput(f"invalid image reference {ref!r}: {exc}") from None
    registry = default_registry
    first, sep, rest = text.partition("/")
    if sep and _looks_like_host(first):
        registry, text = first, rest
    registry = normalize_registry(registry)
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1:]
    if registry == DOCKER_HUB and "/" not in text:
        text = f"library/{text}"
    if tag is None and digest is None:
        tag = "latest"
    try:
        return Reference(registry, text, tag, digest)
    except BadInput as exc:
        raise BadInput(f"invalid image reference {ref!r}: {exc}") from None


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def nightly_tag(base_tag: str, day: dt.date) -> str:
    # Explicit zero padding: strftime("%Y") gives 3 digits for year 999 on glibc.
    return validate_tag(f"{base_tag}-{day.year:04d}{day.month:02d}{day.day:02d}")


def nightly_candidates(base_tag: str, days: int, today: dt.date | None = None) -> list[tuple[str, dt.date]]:
    """Tags `<base_tag>-<YYYYMMDD>` for today and the `days - 1` days before, newest first (UTC)."""
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_DAYS:
        raise BadInput(f"invalid day window {days!r}: expected a whole number of days from 1 to {MAX_DAYS}")
    validate_tag(base_tag)
    # The date suffix adds 9 characters; refuse a base tag that cannot carry it.
    if len(base_tag) > 128 - 9:
        raise BadInput(f"invalid base tag {base_tag!r}: too long to add the -YYYYMMDD suffix (max 119 characters)")
    start = today or utc_today()
    if start.toordinal() < days:
        raise BadInput(f"invalid day window {days!r}: reaches before year 1")
    return [(nightly_tag(base_tag, start - dt.timedelta(days=i)), start - dt.timedelta(days=i)) for i in range(days)]


def nightly_date(tag: str, base_tag: str) -> dt.date | None:
    """The date of a nightly tag of `base_tag`, or None if `tag` is not one of its nightlies."""
    prefix = f"{base_tag}-"
    if not tag.startswith(prefix):
        return None
    suffix = tag[len(prefix):]
    if len(suffix) != 8 or not suffix.isdigit():
        return None
    try:
        return dt.datetime.strptime(suffix, NIGHTLY_DATE_FORMAT).date()
    except ValueError:
        return None
