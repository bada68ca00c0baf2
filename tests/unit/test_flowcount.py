"""How many ranges download at once: more while the total rate grows, back one step when a link
cap makes more flows useless. Driven by a model link (per-flow cap, optional link cap)."""

from lanmirror.remote.blobread import FlowCount, RangeSettings

CHUNK = 2 << 20


def drive(per_flow: float, link: float | None, limit: int = 16, seconds: float = 20.0) -> FlowCount:
    flows = FlowCount(RangeSettings(window=limit, chunk_size=CHUNK))
    now, step = 0.0, 0.01
    while now < seconds:
        rate = per_flow * flows.target
        if link is not None:
            rate = min(rate, link)
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
