"""Tag files are untrusted input: only OCI-grammar tags get through, everything else is a clear error."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lanmirror.errors import BadInput
from lanmirror.name import TAG_RE
from lanmirror.sources.tagfile import MAX_TAG_FILE_BYTES, read_tag_file


def test_single_file_trimmed_and_deduplicated(tmp_path):
    f = tmp_path / "tag.txt"
    f.write_text("  v1-20261128 \n\n# a comment\nv1-20261128\nv1-20261127\n")
    assert read_tag_file(f) == ["v1-20261128", "v1-20261127"]


def test_folder_of_arch_files(tmp_path):
    (tmp_path / "mi35x.txt").write_text("b-20261128\n")
    (tmp_path / "mi30x.txt").write_text("a-20261128")
    (tmp_path / "notes.md").write_text("ignored")
    assert read_tag_file(tmp_path) == ["a-20261128", "b-20261128"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty"), ("\n \n", "empty"), ("tag with spaces\n", "invalid tag"), ("$(reboot)\n", "invalid tag"),
     ("-leading-dash\n", "invalid tag"), ("a" * 129 + "\n", "invalid tag"), ("ok\n`id`\n", ":2: invalid tag")],
)
def test_bad_tag_files(tmp_path, content, message):
    f = tmp_path / "tag.txt"
    f.write_text(content)
    with pytest.raises(BadInput, match=message.replace("$", r"\$").replace("(", r"\(")):
        read_tag_file(f)


def test_refuses_symlinks_large_files_and_missing_paths(tmp_path):
    (tmp_path / "target").write_text("a-1\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "target")
    with pytest.raises(BadInput, match="symlink"):
        read_tag_file(tmp_path / "link.txt")
    big = tmp_path / "big.txt"
    big.write_text("a\n" * (MAX_TAG_FILE_BYTES // 2 + 1))
    with pytest.raises(BadInput, match="not a tag file"):
        read_tag_file(big)
    with pytest.raises(BadInput, match="does not exist"):
        read_tag_file(tmp_path / "nope.txt")
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(BadInput, match=r"no \*\.txt"):
        read_tag_file(empty)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(st.text(max_size=300))
def test_whatever_the_file_holds_only_valid_tags_come_out(tmp_path, content):
    f = tmp_path / "fuzz.txt"
    f.write_text(content, encoding="utf-8")
    try:
        tags = read_tag_file(f)
    except BadInput:
        return
    assert tags and all(TAG_RE.match(t) for t in tags)
