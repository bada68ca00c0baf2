"""The fault matrix (tests/faults.py) as test cases: every row must end in the right image or a
clear non-zero exit, within its bound. `python -m tests.faults` prints the same rows as a table."""

import pytest

from tests.faults import ROWS, row_id, run_row

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("row", ROWS, ids=[row_id(r) for r in ROWS])
def test_fault_row(stack, row):
    out = run_row(stack, row)
    assert out.ok, f"{row_id(row)}: {out.summary}\n{out.detail}"
    assert out.seconds <= row.bound, f"{row_id(row)} took {out.seconds:.1f}s, bound {row.bound}s"
