"""The CLI fixes glibc's mmap threshold so big freed buffers go back to the system."""


def test_the_heap_bound_is_set_once_and_leaves_a_user_setting_alone(monkeypatch):
    from lanmirror.cmd import heap

    assert heap.bound_heap() is True  # glibc on Linux: mallopt accepted the threshold
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert heap.bound_heap() is False
