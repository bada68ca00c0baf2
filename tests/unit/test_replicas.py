"""How one blob's ranges are shared between replicas (remote/blobread.Replicas)."""

from lanmirror.remote.replicas import Replicas


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


def replicas(n: int) -> Replicas:
    return Replicas([(Named(f"r{i}"), "repo") for i in range(n)])  # type: ignore[misc]


def test_each_range_goes_to_the_replica_with_the_fewest_in_flight():
    r = replicas(3)
    assert [r.pick() for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    r.done(1, 2 << 20, 0.1, failed=False)
    assert r.pick() == 1  # it had a range come back


def test_on_a_tie_the_faster_replica_is_chosen():
    r = replicas(2)
    r.inflight = [1, 1]
    r.done(0, 1 << 20, 1.0, failed=False)
    r.done(1, 10 << 20, 1.0, failed=False)
    assert (r.rate(0), r.rate(1)) == (1 << 20, 10 << 20)
    assert r.pick() == 1


def test_a_replica_that_failed_twice_is_left_out():
    r = replicas(2)
    for _ in range(2):
        assert r.pick() == 0
        r.done(0, 0, 0.1, failed=True)
    assert {r.pick() for _ in range(4)} == {1}
    assert r.names() == {}  # nobody delivered a byte


def test_all_failed_only_once_every_replica_failed_twice():
    r = replicas(2)
    for i in (0, 0, 1):
        r.pick()
        r.done(i, 0, 0.1, failed=True)
    assert not r.all_failed()
    r.pick()
    r.done(1, 0, 0.1, failed=True)
    assert r.all_failed()
