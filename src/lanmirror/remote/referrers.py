"""What refers to a manifest (signatures, SBOMs, provenance), as registries store it today.

Two schemes live side by side:
- OCI 1.1 referrers: manifests whose `subject` names the image. A registry with the referrers API
  lists them at `GET /v2/<repo>/referrers/<digest>`; on one without it (Distribution 2.8, Debian's
  `docker-registry`) clients keep an index of them under the fallback tag `sha256-<hex>`.
- cosign's tag scheme: `sha256-<hex>.sig`, `.att` and `.sbom` in the image's repository.

Verbs only, like the rest of `remote`: which referrers to copy and how a fallback index is merged
is for `ops.mirror.referrers`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from lanmirror.errors import RegistryError
from lanmirror.name import validate_digest, validate_repository
from lanmirror.remote.manifest import OCI_INDEX, Manifest, ManifestHead, sha256_digest
from lanmirror.remote.registry import Registry, pull_scope, read_capped

# cosign's tags and the artifact types cosign gives the same things when it stores them as OCI
# referrers: one vocabulary for --artifact-type and --require-referrer whichever scheme is used.
COSIGN = {"sig": "application/vnd.dev.cosign.artifact.sig.v1+json",
          "att": "application/vnd.dev.cosign.artifact.att.v1+json",
          "sbom": "application/vnd.dev.cosign.artifact.sbom.v1+json"}
MAX_PAGES = 100


def fallback_tag(digest: str) -> str:
    """The OCI 1.1 fallback tag: `<alg>-<hex>`, at most 128 characters."""
    alg, _, hexpart = validate_digest(digest).partition(":")
    return f"{alg}-{hexpart}"[:128]


def cosign_tag(digest: str, kind: str) -> str:
    return f"{fallback_tag(digest)}.{kind}"


@dataclass(frozen=True)
class Referrer:
    """One entry of a referrers list, kept as the registry listed it (a merged fallback index
    carries every entry byte for byte)."""

    digest: str
    media_type: str
    size: int
    artifact_type: str
    raw: dict[str, Any] = field(compare=False, hash=False, repr=False)

    @classmethod
    def parse(cls, entry: object) -> Referrer:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str):
            raise RegistryError("a referrers list entry is not a descriptor")
        return cls(validate_digest(entry["digest"]), str(entry.get("mediaType", "")), int(entry.get("size", 0)),
                   str(entry.get("artifactType", "")), entry)


@dataclass
class Referrers:
    """What a registry says refers to one digest. `api`: it answered the referrers API (and then
    indexes what is pushed to it); otherwise `index` is its fallback tag's index, if it has one."""

    items: list[Referrer]
    api: bool
    index: Manifest | None = None


def entries(index: Manifest) -> list[Referrer]:
    data = index.parsed()
    return [Referrer.parse(m) for m in data.get("manifests") or []]


def referrers_api(reg: Registry, repo: str, digest: str) -> list[Referrer] | None:
    """The referrers API's list, every page; None when the registry has no such API (a 404: a
    registry that has it answers 200 with an empty list for a digest nothing refers to)."""
    validate_repository(repo)
    path: str | None = f"/v2/{repo}/referrers/{validate_digest(digest)}"
    out: list[Referrer] = []
    seen: set[str] = set()
    while path:
        if path in seen or len(seen) >= MAX_PAGES:
            raise RegistryError(f"{reg.name}: the referrers of {repo}@{digest[:19]}… page in a loop", registry=reg.name)
        seen.add(path)
        resp = reg.transport.request("GET", path, scope=pull_scope(repo), headers={"Accept": OCI_INDEX},
                                     stream=True)
        if resp.status_code in (404, 405, 501) and not out:
            resp.close()
            return None
        if resp.status_code != 200:
            raise reg._fail(resp, f"GET referrers of {repo}@{digest[:19]}…")
        body = read_capped(resp, reg.name, f"the referrers list of {repo}@{digest[:19]}…")
        try:
            data = json.loads(body)
        except ValueError:
            raise RegistryError(f"{reg.name}: the referrers list is not JSON", registry=reg.name) from None
        if not isinstance(data, dict):
            raise RegistryError(f"{reg.name}: the referrers list is not an index", registry=reg.name)
        out += [Referrer.parse(m) for m in data.get("manifests") or []]
        nxt = resp.links.get("next", {}).get("url")
        path = urljoin(reg.transport.url("/"), nxt) if nxt else None
    return out


def head_fallback(reg: Registry, repo: str, digest: str) -> ManifestHead | None:
    return reg.head_manifest(repo, fallback_tag(digest))


def list_referrers(reg: Registry, repo: str, digest: str, *, api: bool | None = None) -> Referrers:
    """The referrers API where the registry has one (`api` False: do not ask), else the fallback
    tag's index."""
    if api is not False:
        listed = referrers_api(reg, repo, digest)
        if listed is not None:
            return Referrers(listed, True)
    if head_fallback(reg, repo, digest) is None:
        return Referrers([], False)
    index = reg.get_manifest(repo, fallback_tag(digest))
    return Referrers(entries(index), False, index)


def merged_index(existing: Manifest | None, add: list[Referrer]) -> Manifest:
    """`existing`'s entries, then those of `add` it lacks: nothing already listed is dropped or
    reordered, so another client's referrers survive."""
    data: dict[str, Any] = existing.parsed() if existing is not None else {
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    listed = list(data.get("manifests") or [])
    have = {m.get("digest") for m in listed if isinstance(m, dict)}
    listed += [r.raw for r in add if r.digest not in have]
    data["manifests"] = listed
    body = json.dumps(data, separators=(",", ":")).encode()
    return Manifest(body, OCI_INDEX, sha256_digest(body))
