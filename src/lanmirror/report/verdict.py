"""A plain sentence where the numbers support one, and silence (or "not enough data") where they
do not: an operator acts on these, so each needs enough pulls behind it."""

from __future__ import annotations

from lanmirror.report.aggregate import FleetReport

MIN_PULLS = 5  # per side, before two sources' medians are compared


def verdicts(rep: FleetReport) -> list[str]:
    lan, hub = rep.source("lan"), rep.source("hub")
    lan_s, hub_s = lan.summary(), hub.summary()
    window = f"over {rep.days} day(s)"
    out: list[str] = []
    if lan.pulls >= MIN_PULLS and hub.pulls >= MIN_PULLS:
        if lan_s["p50"] > hub_s["p50"]:
            out.append(f"the LAN's p50 ({lan_s['p50']:.1f} s) is slower than the Hub's ({hub_s['p50']:.1f} s) "
                       f"{window}: add a replica or check its disk and network")
        else:
            out.append(f"the LAN is worth it: p50 {lan_s['p50']:.1f} s against the Hub's {hub_s['p50']:.1f} s {window}")
    elif lan.pulls + hub.pulls:
        out.append(f"not enough pulls to compare the LAN with the Hub {window} (LAN {lan.pulls}, Hub {hub.pulls}; "
                   f"{MIN_PULLS} of each are needed)")
    tried_lan = lan.pulls + lan.handoffs + lan.failures
    if tried_lan >= MIN_PULLS and (lan.handoffs + lan.failures) / tried_lan > 0.1:
        share = 100 * (lan.handoffs + lan.failures) / tried_lan
        out.append(f"{lan.handoffs + lan.failures} of {tried_lan} LAN attempts ({share:.0f}%) were handed off or "
                   f"failed ({lan.handoffs} hand-offs, {lan.failures} failures): look at the slowest replica in the "
                   "table")
    fetched = lan.pulls + hub.pulls
    if fetched >= MIN_PULLS and hub.pulls / fetched > 0.2:
        out.append(f"{hub.pulls} of {fetched} downloads ({100 * hub.pulls / fetched:.0f}%) came from the Hub (LAN "
                   f"{lan.pulls}, Hub {hub.pulls}; cache hits download nothing): mirror the tags jobs use (is the "
                   "mirror workflow running after each nightly?)")
    if rep.lowest_ratelimit is not None and rep.lowest_ratelimit < 20:
        out.append(f"the Hub's ratelimit-remaining fell to {rep.lowest_ratelimit}: jobs are close to the pull limit")
    if rep.unsigned:
        out.append(f"{rep.unsigned} record(s) were not signed: anything that prints to a job log could have "
                   "written them; set LANMIRROR_RECORD_KEY for the runs and the report")
    return out
