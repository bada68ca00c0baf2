"""Which tag of a nightly line is the newest: versions compare as numbers, then the date."""

from lanmirror.ops.resolve.fallback import line, newest


def test_a_line_leaves_the_version_open_and_keeps_the_rest():
    pattern = line("v0.5.5-rocm700-mi30x")
    assert pattern.match("v0.5.10-rocm700-mi30x-20261001")
    assert pattern.match("v0.6-rocm700-mi30x-20261001")
    assert not pattern.match("v0.5.5-rocm720-mi30x-20261001")  # another line
    assert not pattern.match("v0.5.5-rocm700-mi30x-latest")
    assert line("nightly").match("nightly-20261001") and not line("nightly").match("nightly2-20261001")


def test_v0_5_10_is_newer_than_v0_5_9_whatever_the_dates():
    tags = ["v0.5.9-rocm700-mi30x-20261120", "v0.5.10-rocm700-mi30x-20261001", "v0.5.2-rocm700-mi30x-20261130",
            "v0.5.10-rocm700-mi30x-20260901", "v0.5.11-rocm720-mi30x-20261130", "latest"]
    assert newest(tags, ["v0.5.5-rocm700-mi30x"]) == "v0.5.10-rocm700-mi30x-20261001"


def test_the_first_base_tag_with_a_match_wins_and_a_bad_date_is_skipped():
    tags = ["v1-b-20261399", "v1-a-20260101", "v2-a-20250101"]
    assert newest(tags, ["v1-b", "v1-a"]) == "v2-a-20250101"
    assert newest(tags, ["v1-c"]) is None
