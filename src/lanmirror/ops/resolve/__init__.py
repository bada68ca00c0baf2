"""resolve-image: pick the newest usable nightly and make it available locally.

Sources in order: the runner's Docker cache, the LAN registries, the upstream ("Hub"). The steps,
one module each: `candidates` → `probe` → `choose` → `verify` → `fetch` (which also reports);
`pipeline` strings them together. Returns a `Resolution` (or raises `NothingFound`) and prints
nothing: the entry points do.
"""

from lanmirror.ops.resolve.model import (
    POLICIES,
    Attempt,
    Candidate,
    NothingFound,
    Resolution,
    ResolveOptions,
)
from lanmirror.ops.resolve.pipeline import resolve

__all__ = ["POLICIES", "Attempt", "Candidate", "NothingFound", "Resolution", "ResolveOptions", "resolve"]
