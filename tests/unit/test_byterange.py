"""The Range header both servers read: a daemon's resume asks for `bytes=N-`, a reader's range for
`bytes=a-b`; past the end is 416, anything else is the whole body."""

import pytest

from lanmirror.serve.byterange import RangeNotSatisfiable, byte_range


@pytest.mark.parametrize("header, window", [
    (None, None), ("", None), ("bytes=5-", (5, 99)), ("bytes=0-9", (0, 9)), ("bytes=90-500", (90, 99)),
    ("items=0-9", None), ("bytes=-10", None), ("bytes=1-2,5-6", None),
])
def test_ranges_read_the_same_for_both_servers(header, window):
    assert byte_range(header, 100) == window


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=9-3"])
def test_a_range_past_the_end_is_not_satisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, 100)
