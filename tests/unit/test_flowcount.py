"""How many ranges download at once: more while the total rate grows, back one step when a link
cap makes more flows useless. Driven by a model link (per-flow cap, optional link cap)."""

from lanmirror.remote.ranges import FlowCount, RangeSettings

CHUNK = 2 << 20


def drive(per_flow: float, link: float | None, limit: int = 16, seconds: float = 1.5,
          link_after: float | None = None, later: float = 0.0) -> FlowCount:
    """`seconds` of copying; from `later` on, the link cap is `link_after`."""
    flows = FlowCount(RangeSettings(window=limit, chunk_size=CHUNK))
    now, step = 0.0, 0.01
    while now < seconds:
        rate = per_flow * flows.target
        cap = link_after if later and now >= later else link
        if cap is not None:
            rate = min(rate, cap)
        flows.arrived(int(rate * step))
        now += step
        flows.adjust(now)
    return flows


def test_a_per_flow_cap_and_a_free_link_open_up_to_the_bound():
    flows = drive(25e6, None)
    assert flows.history == [4, 8, 16] and flows.target == 16


def test_a_binding_link_cap_goes_back_to_the_count_that_helped():
    flows = drive(25e6, 100e6)  # 4 flows fill the link; 8 bring nothing
    assert flows.history == [4, 8, 4] and flows.target == 4


def test_a_cap_between_steps_keeps_the_step_that_still_gained():
    flows = drive(25e6, 150e6)  # 8 flows give 150 (+50%), 16 give 150 (+0%)
    assert flows.history == [4, 8, 16, 8] and flows.target == 8


def test_the_bound_is_never_passed():
    assert drive(25e6, None, limit=6).history == [4, 6]
    assert drive(25e6, None, limit=2).history == [2]


def test_a_link_that_frees_up_is_tried_again_and_used():
    """Settled at 4 under a 100 MB/s cap; the cap lifts; after RETRY_BYTES it grows again."""
    flows = drive(25e6, 100e6, seconds=8.0, link_after=1e12, later=1.5)
    assert flows.history[:3] == [4, 8, 4] and flows.target == 16


def test_under_a_cap_that_stays_retries_cost_one_step_and_come_back():
    flows = drive(25e6, 100e6, seconds=8.0)
    # Every try of 8 flows is followed by the return to 4; nothing above 8 is ever opened.
    assert flows.history.count(8) >= 2 and set(flows.history) == {4, 8}
    assert all(n == (4 if i % 2 == 0 else 8) for i, n in enumerate(flows.history))
