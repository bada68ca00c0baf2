"""Rendezvous hashing: stable per runner, even across the fleet, minimal movement when a replica goes."""

from collections import Counter

from lanmirror.ops.resolve.spread import rendezvous, runner_identity

REPLICAS = ["10.0.1.5:5000", "10.0.2.5:5000"]


def test_eight_runners_split_across_two_replicas_and_stay_put():
    runners = [f"gpu-runner-{i:02d}" for i in range(1, 9)]
    first = {r: rendezvous(r, REPLICAS)[0] for r in runners}
    counts = Counter(first.values())
    assert set(counts) == set(REPLICAS) and min(counts.values()) >= 2, counts
    assert first == {r: rendezvous(r, list(reversed(REPLICAS)))[0] for r in runners}  # order given is irrelevant


def test_a_large_fleet_splits_evenly_and_only_the_lost_replicas_runners_move():
    replicas = [*REPLICAS, "10.0.3.5:5000", "10.0.4.5:5000"]
    runners = [f"runner-{i}" for i in range(2000)]
    first = {r: rendezvous(r, replicas)[0] for r in runners}
    counts = Counter(first.values())
    assert all(400 <= n <= 600 for n in counts.values()), counts  # 500 each, give or take
    gone = replicas[0]
    after = {r: rendezvous(r, replicas[1:])[0] for r in runners}
    moved = {r for r in runners if after[r] != first[r]}
    assert moved == {r for r in runners if first[r] == gone}


def test_identity_defaults_to_the_runner_name(monkeypatch):
    monkeypatch.setenv("RUNNER_NAME", "gpu-7")
    assert runner_identity() == "gpu-7" and runner_identity("explicit") == "explicit"
