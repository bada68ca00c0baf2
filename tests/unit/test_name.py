import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lanmirror.errors import BadInput
from lanmirror.name import (
    TAG_RE,
    Reference,
    nightly_candidates,
    nightly_date,
    normalize_registry,
    parse,
    validate_digest,
    validate_repository,
    validate_tag,
)


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("rocm/sgl-dev:v0.5.5-rocm700-mi30x-20261128", "docker.io", "rocm/sgl-dev",
         "v0.5.5-rocm700-mi30x-20261128", None),
        ("ubuntu", "docker.io", "library/ubuntu", "latest", None),
        ("docker.io/library/x", "docker.io", "library/x", "latest", None),
        ("index.docker.io/rocm/sgl-dev:t", "docker.io", "rocm/sgl-dev", "t", None),
        ("10.0.0.5:5000/rocm/sgl-dev:t", "10.0.0.5:5000", "rocm/sgl-dev", "t", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("127.0.0.1:5000/rocm/sgl-dev:t@sha256:" + "a" * 64, "127.0.0.1:5000", "rocm/sgl-dev", "t",
         "sha256:" + "a" * 64),
        ("rocm/sgl-dev@sha256:" + "b" * 64, "docker.io", "rocm/sgl-dev", None, "sha256:" + "b" * 64),
    ],
)
def test_parse(text, registry, repository, tag, digest):
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_familiar_names_round_trip():
    assert str(parse("ubuntu")) == "ubuntu:latest"
    assert str(parse("rocm/sgl-dev:t")) == "rocm/sgl-dev:t"
    assert str(parse("rocm/sgl-dev:t").on("10.0.0.5:5000")) == "10.0.0.5:5000/rocm/sgl-dev:t"
    assert parse("rocm/sgl-dev:t").identifier == "t"
    assert parse("rocm/sgl-dev@sha256:" + "c" * 64).identifier == "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty image reference"),
        ("   ", "empty image reference"),
        ("Rocm/SGL-dev:t", "invalid repository"),
        ("rocm/sgl-dev:" + "a" * 129, "invalid tag"),
        ("rocm/sgl-dev:-bad", "invalid tag"),
        ("rocm/sgl-dev@sha256:xyz", "invalid digest"),
        ("rocm/sgl dev:t", "whitespace"),
        ("rocm/sgl-dev:$(reboot)", "invalid tag"),
    ],
)
def test_parse_rejects_bad_input_naming_it(text, fragment):
    with pytest.raises(BadInput) as info:
        parse(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    if text.strip():
        assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.5:5000", "10.0.0.5:5000"),
        ("http://10.0.0.5:5000/", "10.0.0.5:5000"),
        ("https://registry-1.docker.io", "docker.io"),
        ("Registry.Example.COM", "registry.example.com"),
        ("[::1]:5000", "[::1]:5000"),
    ],
)
def test_normalize_registry(value, expected):
    assert normalize_registry(value) == expected


@pytest.mark.parametrize("value", ["", "ftp://10.0.0.5", "10.0.0.5:5000/path", "host:99999", "a b", "http://x/y"])
def test_normalize_registry_rejects(value):
    with pytest.raises(BadInput):
        normalize_registry(value)


def test_candidates_newest_first_across_year_boundary():
    got = nightly_candidates("v0.5.5-rocm700-mi30x", 7, today=dt.date(2027, 1, 2))
    assert [t for t, _ in got] == [
        "v0.5.5-rocm700-mi30x-20270102", "v0.5.5-rocm700-mi30x-20270101", "v0.5.5-rocm700-mi30x-20261231",
        "v0.5.5-rocm700-mi30x-20261230", "v0.5.5-rocm700-mi30x-20261229", "v0.5.5-rocm700-mi30x-20261228",
        "v0.5.5-rocm700-mi30x-20261227",
    ]
    assert got[2][1] == dt.date(2026, 12, 31)


def test_candidates_across_leap_day_and_month():
    got = [t for t, _ in nightly_candidates("b", 3, today=dt.date(2028, 3, 1))]
    assert got == ["b-20280301", "b-20280229", "b-20280228"]


@pytest.mark.parametrize("days", [0, -1, 367, "7", True, 1.5])
def test_candidates_reject_bad_window(days):
    with pytest.raises(BadInput, match="day window"):
        nightly_candidates("b", days, today=dt.date(2026, 1, 1))


def test_candidates_reject_base_tag_too_long_for_suffix():
    validate_tag("a" * 120)
    with pytest.raises(BadInput, match="too long"):
        nightly_candidates("a" * 120, 1)


def test_nightly_date():
    assert nightly_date("b-20261128", "b") == dt.date(2026, 11, 28)
    assert nightly_date("b-20261340", "b") is None
    assert nightly_date("b-latest", "b") is None
    assert nightly_date("c-20261128", "b") is None
    assert nightly_date("b-x-20261128", "b") is None


@given(st.text(max_size=200))
def test_parse_never_crashes_otherwise(text):
    try:
        ref = parse(text)
    except BadInput:
        return
    if ref.tag is not None:
        assert TAG_RE.match(ref.tag)
    assert Reference(ref.registry, ref.repository, ref.tag, ref.digest) == ref


@given(st.text(max_size=130), st.integers(min_value=1, max_value=40), st.dates())
def test_candidates_are_always_valid_tags(base, days, today):
    try:
        got = nightly_candidates(base, days, today=today)
    except BadInput:
        return
    assert len(got) == days
    assert all(TAG_RE.match(t) and nightly_date(t, base) == d for t, d in got)
    assert [d for _, d in got] == sorted((d for _, d in got), reverse=True)


@pytest.mark.parametrize(("check", "value"), [
    (validate_repository, "rocm/sgl-dev\n"), (validate_tag, "v0.5.5\n"),
    (validate_digest, "sha256:" + "a" * 64 + "\n"), (normalize_registry, "10.0.0.5:5000\n/x"),
])
def test_a_trailing_newline_never_passes(check, value):
    """`$` matches before a final newline: every name is checked as a whole."""
    with pytest.raises(BadInput):
        check(value)
