"""What a pull through an endpoint did, in this job or on the daemon's host, and how it is
accounted: shared by both paths (`fastpull`, `onhost`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lanmirror.daemon import LocalImage
from lanmirror.ops.resolve.context import Run
from lanmirror.ops.resolve.model import Option
from lanmirror.serve import Source


@dataclass
class FastPull:
    """What a pull through the endpoint did: the image, the loopback reference the daemon pulled
    (to be renamed), and per source what it delivered."""

    image: LocalImage
    ref: str
    sources: list[Source] = field(default_factory=list)
    served: int = 0
    path: str = "ranges"  # ranges: the endpoint in this job; endpoint-on-host: the helper container
    named: str = ""  # `127.0.0.1:PORT/<repo>@digest`, when the daemon also recorded that name


def manifest_deadline(run: Run) -> float:
    """How long one source may take to give one manifest: a probe's bound, with room for a WAN."""
    return run.within(max(run.opts.probe_timeout, 5.0))


def account(run: Run, option: Option, sources: list[Source], started: float, path: str) -> None:
    """A row per source that delivered bytes, failed or served wrong bytes; a source that served
    wrong bytes is not asked again for the rest of the run."""
    hub_bytes = sum(s.bytes for s in sources if s.kind == "hub")
    if option.kind == "lan" and hub_bytes:
        run.warn(f"the LAN copy on {option.registry} could not serve every blob: {hub_bytes / 1e6:.1f} MB came "
                 f"from {run.opts.hub_registry}; mirror the tag again")
    for source in sources:
        if source.bad:
            run.bad_sources.add(source.name)
        if source.bytes or source.failures or source.bad:
            state = "served wrong bytes; not used again" if source.bad else (
                f"{source.failures} failure(s), handed on" if source.failures else "delivered")
            run.record(source.kind, source.name, f"{state}: {source.bytes / 1e6:.1f} MB", started,
                       option.cand.tag, path=path, nbytes=source.bytes, mbps=round(source.rate() / 1e6, 1))
