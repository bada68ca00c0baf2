"""Who is to blame when a blob assembled from several sources hashes wrong."""

from lanmirror.serve.feed import Provenance, SourceRun


def test_a_source_whose_own_whole_blob_hashes_wrong_is_guilty():
    p = Provenance([SourceRun({"lan"}), SourceRun({"hub"}, whole=False)])
    assert p.guilty() == {"hub"}


def test_the_one_source_left_when_every_other_part_is_proven_right_is_guilty():
    p = Provenance([SourceRun({"lan"}), SourceRun({"hub"}, whole=True)])
    assert p.guilty() == {"lan"}


def test_replicas_that_shared_the_ranges_of_one_run_are_not_blamed():
    assert Provenance([SourceRun({"lan", "lan2"})]).guilty() == set()
    # Proven right in its own run, but it also served ranges in the first: still not told apart.
    assert Provenance([SourceRun({"lan", "lan2"}), SourceRun({"lan2"}, whole=True)]).guilty() == set()


def test_a_single_source_that_served_the_whole_blob_alone_is_guilty():
    assert Provenance([SourceRun({"lan"})]).guilty() == {"lan"}
    assert Provenance([SourceRun({"lan"}), SourceRun({"hub"})]).guilty() == set()  # unchecked takeover
