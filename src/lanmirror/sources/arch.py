"""A runner's GPU architecture, and the nightly base tags and image override that go with it.

The CI lanmirror replaces names its runners after their GPUs (`linux-mi325-gpu-3`) and picks the
nightly line per architecture (`MI30X_BASE_TAG`, `MI35X_BASE_TAG`), with a per-architecture image
forced from the environment for one-off runs (`AMD_CI_IMAGE`, `AMD_CI_IMAGE_MI35X`). The same, as
data: a pattern that finds the GPU in the runner's name, a map from GPU to architecture, base tags
with an `{arch}` placeholder or given per architecture, and an environment prefix for overrides.
Every default fits those names; every one can be replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lanmirror.errors import BadInput
from lanmirror.name import validate_tag

DEFAULT_PATTERN = r"(mi\d{3})"
DEFAULT_MAP = {"mi300": "mi30x", "mi308": "mi30x", "mi325": "mi30x", "mi350": "mi35x", "mi355": "mi35x"}
DEFAULT_ARCH = "mi30x"  # the one a bare override variable (AMD_CI_IMAGE) is for
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def parse_map(text: str) -> dict[str, str]:
    """`mi300=mi30x,mi325=mi30x` (commas, spaces or newlines between pairs)."""
    out: dict[str, str] = {}
    for pair in re.split(r"[\s,]+", text.strip()):
        if not pair:
            continue
        gpu, sep, arch = pair.partition("=")
        gpu, arch = gpu.strip().lower(), arch.strip().lower()
        if not sep or not _NAME.fullmatch(gpu) or not _NAME.fullmatch(arch):
            raise BadInput(f"invalid arch map entry {pair!r}: write GPU=ARCH pairs, e.g. mi325=mi30x,mi355=mi35x")
        out[gpu] = arch
    if not out:
        raise BadInput("empty arch map: write GPU=ARCH pairs, e.g. mi325=mi30x,mi355=mi35x")
    return out


@dataclass(frozen=True)
class ArchRule:
    pattern: str = DEFAULT_PATTERN
    mapping: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_MAP))

    def detect(self, runner: str) -> str:
        """The architecture of the runner called `runner`, from the pattern's first group."""
        try:
            found = re.search(self.pattern, runner, re.IGNORECASE)
        except re.error as exc:
            raise BadInput(f"invalid arch pattern {self.pattern!r}: {exc}") from None
        if found is None:
            raise BadInput(f"cannot tell the GPU architecture from the runner name {runner!r} (pattern "
                           f"{self.pattern!r}): give --gpu-arch, or an --arch-pattern that matches it")
        gpu = (found.group(1) if found.groups() else found.group(0)).lower()
        arch = self.mapping.get(gpu)
        if arch is None:
            known = ", ".join(f"{k}={v}" for k, v in self.mapping.items())
            raise BadInput(f"unsupported GPU architecture {gpu!r} (runner {runner!r}); the arch map knows "
                           f"{known}: add it with --arch-map, or give --gpu-arch")
        return arch


def base_tags_for(arch: str, base_tags: list[str], per_arch: list[str]) -> list[str]:
    """The base tags for `arch`, in preference order: the `ARCH=TAG` entries of `per_arch` for it,
    then `base_tags` with `{arch}` filled in."""
    out: list[str] = []
    for entry in per_arch:
        key, sep, tag = entry.partition("=")
        if not sep or not _NAME.fullmatch(key.strip().lower()) or not tag.strip():
            raise BadInput(f"invalid --base-tag-for {entry!r}: write ARCH=TAG, e.g. mi35x=v0.5.5-rocm700-mi35x")
        if key.strip().lower() == arch:
            out.append(tag.strip())
    out += [t.replace("{arch}", arch) for t in base_tags]
    for tag in out:
        if "{" in tag or "}" in tag:
            raise BadInput(f"base tag {tag!r}: the only placeholder is {{arch}}")
        validate_tag(tag)
    if not out:
        raise BadInput(f"unsupported GPU architecture {arch!r}: no base tag for it; give --base-tag-for "
                       f"{arch}=TAG or a --base-tag with {{arch}} in it")
    return list(dict.fromkeys(out))


def needs_arch(base_tags: list[str], per_arch: list[str], image_env: str) -> bool:
    return bool(per_arch or image_env) or any("{arch}" in t for t in base_tags)


def override_variables(prefix: str, arch: str, default_arch: str = DEFAULT_ARCH) -> list[str]:
    """The environment variables that may force the image for `arch`, first match wins:
    PREFIX_<ARCH> (AMD_CI_IMAGE_MI35X), and the bare PREFIX for the default architecture only (the
    original's AMD_CI_IMAGE is the mi30x image; it must not be pulled onto an mi35x runner)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise BadInput(f"invalid --image-env {prefix!r}: give an environment variable name, e.g. AMD_CI_IMAGE")
    names = [f"{prefix}_{re.sub(r'[^A-Za-z0-9]', '_', arch).upper()}"]
    if arch == default_arch:
        names.append(prefix)
    return names


def image_override(prefix: str, arch: str, environ: Mapping[str, str],
                   default_arch: str = DEFAULT_ARCH) -> tuple[str, str] | None:
    """(variable, image) of the first override variable set for `arch`, or None."""
    for name in override_variables(prefix, arch, default_arch):
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None
