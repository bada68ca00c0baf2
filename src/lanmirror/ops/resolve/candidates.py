"""Step 1: the tags worth asking for, in the order the policy prefers them."""

from __future__ import annotations

from lanmirror.name import nightly_candidates, utc_today
from lanmirror.ops.resolve.model import Candidate, ResolveOptions


def candidates(opts: ResolveOptions) -> list[Candidate]:
    """cache-first: base-tag preference, then newest first; newest: newest first, then base-tag preference."""
    today = opts.today or utc_today()
    out = []
    for index, base in enumerate(opts.base_tags):
        for tag, day in nightly_candidates(base, opts.days, today):
            out.append(Candidate(tag, day, index, (today - day).days))
    if opts.policy == "newest":
        out.sort(key=lambda c: (c.age_days, c.base_index))
    return out
