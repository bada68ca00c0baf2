"""The readers' buffer pool: a buffer is handed out again only when no consumer still holds it."""

from lanmirror.remote.buffers import BufferPool, bucket


def test_a_released_buffer_is_reused_and_not_reallocated():
    pool = BufferPool()
    first = pool.take(2 << 20)
    first[:5] = b"hello"
    del first
    again = pool.take(2 << 20)
    assert (pool.made, pool.reused) == (1, 1)
    assert again[:5] == b"hello"  # the same memory, not a fresh zeroed one


def test_a_buffer_still_held_by_a_consumer_is_never_handed_out_twice():
    pool = BufferPool()
    kept = [pool.take(1 << 20) for _ in range(3)]  # e.g. b"".join(reader) collects every chunk first
    view = memoryview(pool.take(1 << 20))[:10]  # a consumer holding only a slice of one
    fresh = pool.take(1 << 20)
    assert pool.reused == 0 and pool.made == 5
    assert all(fresh is not k for k in kept) and fresh is not view.obj
    del kept
    pool.take(1 << 20)
    assert pool.reused == 1


def test_sizes_are_served_from_64k_buckets():
    assert [bucket(n) for n in (1, 64 << 10, (64 << 10) + 1, 3 << 20, (3 << 20) - 7)] == \
        [64 << 10, 64 << 10, 128 << 10, 3 << 20, 3 << 20]
    pool = BufferPool()
    nearly = pool.take((3 << 20) - 12345)
    assert len(nearly) == 3 << 20
    del nearly
    pool.take(3 << 20)
    assert pool.reused == 1


def test_the_pool_tracks_a_bounded_number_of_buffers():
    pool = BufferPool(keep=2)
    held = [pool.take(64 << 10) for _ in range(5)]
    assert pool.tracked_bytes() == 2 * (64 << 10)
    del held
    pool.take(64 << 10)
    assert pool.reused == 1
