"""The relay's read starts after the highest id below which everything was published: it moves
only through ids seen without a gap, steps over a gap that lasts, and a full read comes round."""

from __future__ import annotations

from shopstream.outbox_floor import FULL_SECONDS, GAP_SECONDS, ScanFloor


def test_the_floor_follows_ids_seen_without_a_gap() -> None:
    f = ScanFloor()
    assert f.start(0.0) == 0, "the first read is a full one"
    f.published([1, 2, 3], 0.0)
    assert f.start(0.1) == 3
    f.published([4, 5], 0.1)
    assert f.start(0.2) == 5


def test_a_row_committed_late_below_published_ones_is_not_skipped() -> None:
    f = ScanFloor()
    f.start(0.0)
    f.published([1, 2], 0.0)
    f.published([4, 5], 0.1)  # 3 belongs to a transaction still running
    assert f.start(0.2) == 2, "the next read still finds 3 once it commits"
    f.published([3], 0.3)
    assert f.floor == 5, "the rows above the filled gap were published before"
    f.published([6], 0.4)
    assert f.floor == 6


def test_a_gap_that_lasts_is_stepped_over() -> None:
    f = ScanFloor()
    f.start(0.0)
    f.published([1, 2, 4], 0.0)  # 3 rolled back
    assert f.floor == 2
    f.published([5], GAP_SECONDS / 2)
    assert f.floor == 2
    f.published([6], GAP_SECONDS + 0.1)
    assert f.floor == 6


def test_a_new_gap_has_its_own_time() -> None:
    f = ScanFloor()
    f.start(0.0)
    f.published([1, 3], 0.0)  # gap at 2
    f.published([2, 5], GAP_SECONDS - 0.1)  # 2 came; now a gap at 4
    assert f.floor == 3
    f.published([6], GAP_SECONDS + 0.1)
    assert f.floor == 3, "the gap at 4 is young"


def test_a_full_read_comes_round() -> None:
    f = ScanFloor()
    f.start(0.0)
    f.published([1, 2], 0.0)
    assert f.start(1.0) == 2
    assert f.start(FULL_SECONDS + 0.1) == 0
    f.published([2, 3], FULL_SECONDS + 0.2)  # a straggler below the floor, and a new row
    assert f.floor == 3
