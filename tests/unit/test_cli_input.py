"""What the command line does with input a person mistyped: one clear line, exit 2."""

import pytest


def test_an_argument_error_is_one_line_then_the_help_hint(capsys):
    from lanmirror.cmd.cli import main

    assert main(["resolve", "--repo", "rocm/sgl-dev", "--days", "zero"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("lanmirror resolve: error: "), lines
    assert lines[1] == "(see `lanmirror resolve --help`)"


@pytest.mark.parametrize("argv", [
    ["resolve", "--repo", "rocm/sgl-dev", "--base-tag", "v0.5.5 rocm700", "--no-pull"],
    ["mirror", "--repo", "rocm/sgl-dev", "--tag", "bad tag", "--lan-registry", "127.0.0.1:9"],
    ["prune", "--repo", "rocm/sgl-dev", "--base-tag", "a\tb", "--lan-registry", "127.0.0.1:9", "--keep-days", "7",
     "--dry-run"],
])
def test_white_space_inside_a_tag_is_bad_input_not_two_tags(argv, caplog):
    from lanmirror.cmd.cli import main

    assert main(argv) == 2
    assert "a tag has no white space" in caplog.text


def test_comma_and_new_line_lists_of_tags_still_split():
    from lanmirror.cmd.settings import split_tags

    assert split_tags(["a,b", "c\nd\n", " e "], "--tag") == ["a", "b", "c", "d", "e"]


def test_a_dated_base_tag_gets_a_hint(caplog):
    from lanmirror.cmd.cli import main

    main(["resolve", "--repo", "rocm/sgl-dev", "--base-tag", "v0.5.5-rocm700-mi30x-20261206", "--no-pull",
          "--hub-registry", "127.0.0.1:9", "--probe-timeout", "0.5", "--hub-timeout", "0.5"])
    assert "already ends in a date" in caplog.text and "(v0.5.5-rocm700-mi30x)" in caplog.text


@pytest.mark.parametrize("actions", [False, True])
def test_the_record_line_can_be_left_out_of_stderr_outside_actions(capsys, monkeypatch, tmp_path, actions):
    from lanmirror.cmd.cli import main

    monkeypatch.setenv("GITHUB_ACTIONS", "true" if actions else "false")
    record_file = tmp_path / "records.jsonl"
    main(["resolve", "--repo", "rocm/sgl-dev", "--base-tag", "v0.5.5-rocm700-mi30x", "--no-pull", "--hub-registry",
          "127.0.0.1:9", "--probe-timeout", "0.5", "--hub-timeout", "0.5", "--no-record-line", "--record-file",
          str(record_file)])
    err = capsys.readouterr().err
    assert ("lanmirror-record/1 " in err) is actions  # in a workflow the report reads it from the job log
    assert len(record_file.read_text().splitlines()) == 1  # the file gets it either way
