"""WAN-grade blob reads: parallel bounded ranges, resume at the broken byte, CDN redirects."""

from __future__ import annotations

import re

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.remote.blobread import BlobReader
from lanmirror.remote.ranges import RangeSettings
from lanmirror.retry import RetryPolicy
from tests.stack import FaultProxy, images

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=5, base=0.05, cap=0.2)
SMALL_RANGES = RangeSettings(threshold=1 << 20, chunk_size=256 << 10, window=4, switch_below=None)


@pytest.fixture
def big(stack, repo):
    img = images.build([f"{repo}-big"], 3 << 20)
    images.push(stack.hub_client(), repo, "big", img)
    stack.clear_faults()
    return img


def layer(img):
    return img.manifest.blobs()[1]


def read_all(stack, repo, img, settings=SMALL_RANGES):
    d = layer(img)
    reader = BlobReader(stack.client(stack.hub), repo, d.digest, d.size, FAST, settings)
    data = b"".join(reader)
    return reader, data


def ranges_sent(proxy):
    """Blob GETs that were answered (the 401 of the auth challenge carries an error body, not blob bytes)."""
    return [e for e in proxy.entries("GET", "/blobs/") if e.status != 401]


def test_big_blob_is_read_as_bounded_parallel_ranges(stack, repo, big):
    reader, data = read_all(stack, repo, big)
    assert data == big.blobs[layer(big).digest] and reader.ranged
    gets = ranges_sent(stack.hub_proxy)
    assert len([g for g in gets if g.status == 206]) == -(-layer(big).size // (256 << 10))
    assert sum(g.bytes_out for g in gets) == layer(big).size  # every byte crossed once


def test_ranges_are_always_bounded(stack, repo, big):
    """Never `bytes=a-`: the proxy records the Range header the registry saw via its request log."""
    seen = []
    orig = stack.hub_proxy._serve

    def spy(h, method, path, entry):
        if "/blobs/" in path and method == "GET":
            seen.append(h.headers.get("Range"))
        return orig(h, method, path, entry)

    stack.hub_proxy._serve = spy
    try:
        read_all(stack, repo, big)
    finally:
        stack.hub_proxy._serve = orig
    assert seen and all(r and re.fullmatch(r"bytes=\d+-\d+", r) for r in seen), seen


def test_source_without_range_support_falls_back_to_one_stream(stack, repo, big):
    stack.hub_proxy.ignore_range = True
    reader, data = read_all(stack, repo, big)
    assert data == big.blobs[layer(big).digest] and not reader.ranged
    assert len(ranges_sent(stack.hub_proxy)) == 1


def test_reset_mid_range_resumes_at_the_broken_byte(stack, repo, big):
    # Two resets at blob offsets that fall in two different ranges.
    stack.hub_proxy.break_body("reset", after=100_000)
    stack.hub_proxy.break_body("reset", after=1_000_000)
    reader, data = read_all(stack, repo, big)
    assert data == big.blobs[layer(big).digest]
    assert reader.resumes == 2
    gets = ranges_sent(stack.hub_proxy)
    chunk = 256 << 10
    full_ranges = layer(big).size // chunk
    assert len([g for g in gets if g.fault]) == 2 and all(g.status == 206 for g in gets)
    assert len(gets) == -(-layer(big).size // chunk) + 2
    # The two broken ranges were resumed for their remainder, not fetched whole again.
    whole = [g for g in gets if not g.fault and g.bytes_out == chunk]
    assert len(whole) == full_ranges - 2, [g.bytes_out for g in gets]


def test_reset_mid_stream_resumes_without_ranges_in_parallel(stack, repo, big):
    stack.hub_proxy.break_body("reset", after=1_000_000, count=1)
    settings = RangeSettings(threshold=64 << 20)  # below the threshold: one plain stream
    reader, data = read_all(stack, repo, big, settings)
    assert data == big.blobs[layer(big).digest] and not reader.ranged and reader.resumes == 1
    first, second = ranges_sent(stack.hub_proxy)
    assert first.fault.startswith("reset") and first.status == 200
    # The retry is a bounded range for the remainder, not the whole blob again.
    assert second.status == 206 and 0 < second.bytes_out < layer(big).size


def test_cdn_redirect_gets_no_registry_token(stack, repo, big):
    cdn = FaultProxy(stack.hub_registry.address, "cdn").start()
    try:
        stack.hub_proxy.cdn = cdn
        _, data = read_all(stack, repo, big)
        assert data == big.blobs[layer(big).digest]
        assert [e.status for e in ranges_sent(stack.hub_proxy)][:1] == [307]
        assert cdn.entries("GET") and cdn.cdn_saw_authorization == 0
    finally:
        cdn.stop()


def test_cdn_url_is_reused_for_later_ranges_and_dropped_when_it_expires(stack, repo, big):
    """The registry is asked (and redirects) once per blob, the CDN serves every range directly;
    a CDN URL that stops working (403, as a signed URL past its expiry) sends the reader back to
    the registry for a fresh one, and the bytes are still right."""
    cdn = FaultProxy(stack.hub_registry.address, "cdn").start()
    ranges = -(-layer(big).size // (256 << 10))
    try:
        stack.hub_proxy.cdn = cdn
        _, data = read_all(stack, repo, big)
        assert data == big.blobs[layer(big).digest]
        assert [e.status for e in ranges_sent(stack.hub_proxy)] == [307]
        assert [e.status for e in cdn.entries("GET")] == [206] * ranges and cdn.cdn_saw_authorization == 0
        stack.clear_faults()
        cdn.clear()
        stack.hub_proxy.cdn = cdn
        cdn.cdn_max_uses = 6
        _, data = read_all(stack, repo, big)
        assert data == big.blobs[layer(big).digest]
        served = [e for e in cdn.entries("GET") if e.status == 206]
        expired = [e for e in cdn.entries("GET") if e.status == 403]
        assert len(served) == ranges and expired
        # Expired URLs cost trips back to the registry for new redirects (ranges in flight at the
        # moment of expiry may each make one), still fewer than one per range (3 to 5 of 13 seen).
        assert 1 + len(expired) <= len(ranges_sent(stack.hub_proxy)) < ranges, (len(expired), ranges)
        assert cdn.cdn_saw_authorization == 0
    finally:
        cdn.stop()


def test_readers_share_one_budget_and_a_closed_reader_frees_its_slots(stack, repo, big):
    """Two readers of one mirror share the in-flight budget; abandoning one half-way (a copy that
    failed and is retried) gives its slots back, so the budget never leaks into a deadlock."""
    import threading

    budget = threading.Semaphore(SMALL_RANGES.window)
    d = layer(big)
    reg = stack.client(stack.hub)
    half = BlobReader(reg, repo, d.digest, d.size, FAST, SMALL_RANGES, budget)
    it = iter(half)
    next(it)
    it.close()  # abandoned mid-blob
    readers = [BlobReader(reg, repo, d.digest, d.size, FAST, SMALL_RANGES, budget) for _ in range(2)]
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda r=r: results.append(b"".join(r))) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [big.blobs[d.digest]] * 2
    assert all(budget.acquire(blocking=False) for _ in range(SMALL_RANGES.window))  # every slot came back


def test_slow_connection_switches_to_ranges_fast_one_does_not(stack, repo, big):
    d = layer(big)
    reg = stack.client(stack.hub)
    adaptive = RangeSettings(threshold=1 << 20, chunk_size=256 << 10, window=4, switch_below=5e6, probe=512 << 10)
    fast = BlobReader(reg, repo, d.digest, d.size, FAST, adaptive)
    assert b"".join(fast) == big.blobs[d.digest] and not fast.ranged
    assert len(ranges_sent(stack.hub_proxy)) == 1
    stack.clear_faults()
    stack.hub_proxy.conn_rate = 1e6  # 1 MB/s per connection: a throttled WAN path
    slow = BlobReader(reg, repo, d.digest, d.size, FAST, adaptive)
    assert b"".join(slow) == big.blobs[d.digest] and slow.ranged
    gets = ranges_sent(stack.hub_proxy)
    assert gets[0].status == 200 and all(g.status == 206 for g in gets[1:]) and len(gets) > 2


def test_reset_at_80_percent_is_resumed_and_digest_verified(stack, repo):
    """Through mirror: the big layer's connection is reset at 80%; the copy resumes and the LAN gets
    the same digest."""
    from lanmirror.ops.mirror import MirrorOptions, mirror

    big = images.build([f"{repo}-24m"], 24 << 20)
    images.push(stack.hub_client(), repo, "big", big)
    stack.clear_faults()
    d = layer(big)
    stack.hub_proxy.break_body("reset", after=int(d.size * 0.8), path=d.digest)
    report = mirror(MirrorOptions(repo=repo, tags=["big"], lan_registry=stack.lan, source_registry=stack.hub,
                                  ranges=RangeSettings(threshold=64 << 20)), Clients(policy=FAST, daemon=False))
    assert report.ok and report.results[0].digest == big.digest
    gets = [g for g in ranges_sent(stack.hub_proxy) if d.digest in g.path]
    assert gets[0].fault.startswith("reset") and gets[1].status == 206
    # Resumed, not restarted: the retry carries the last fifth plus whatever the reset destroyed in
    # the socket buffers (an RST discards data in flight), far less than the blob.
    assert gets[1].bytes_out < d.size // 2, (gets[1].bytes_out, d.size)
    assert stack.client(stack.lan).head_manifest(repo, "big").digest == big.digest


@pytest.mark.parametrize("times", [1, 100])
def test_corrupt_range_is_caught_and_never_tagged(stack, repo, big, times):
    from lanmirror.ops.mirror import MirrorOptions, mirror

    d = layer(big)
    stack.hub_proxy.break_body("corrupt", after=1000, count=times, path=d.digest)
    report = mirror(MirrorOptions(repo=repo, tags=["big"], lan_registry=stack.lan, source_registry=stack.hub,
                                  ranges=SMALL_RANGES), Clients(policy=FAST, daemon=False))
    on_lan = stack.client(stack.lan).head_manifest(repo, "big")
    if times == 1:  # a flaky hop: refetched and verified
        assert report.ok and on_lan.digest == big.digest
    else:  # a source that keeps sending bad bytes: the copy fails and nothing is tagged
        assert not report.ok and "corrupt data refused" in report.results[0].error and on_lan is None
