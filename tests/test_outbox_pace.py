"""The relay lingers between batches only while rows are being committed during its batches; the
first row after a quiet moment, and a batch that found everything there, go at once."""

from __future__ import annotations

import pytest

from shopstream.outbox_pace import Pace


def test_the_first_batch_and_one_after_a_quiet_batch_go_at_once() -> None:
    pace = Pace(0.020)
    assert pace.wait_before_next(0.0) == 0.0
    pace.batch_started(0.0)
    pace.batch_done(published=3, committed_meanwhile=False)
    assert pace.wait_before_next(0.001) == 0.0, "nothing was committed while the batch was out"


def test_rows_committed_during_a_batch_make_the_next_wait_out_the_linger_from_its_start() -> None:
    pace = Pace(0.020)
    pace.batch_started(1.000)
    pace.batch_done(published=5, committed_meanwhile=True)
    assert pace.wait_before_next(1.004) == pytest.approx(0.016)
    assert pace.wait_before_next(1.030) == 0.0, "a batch that took longer than the linger"


def test_an_empty_read_is_never_followed_by_a_linger() -> None:
    pace = Pace(0.020)
    pace.batch_started(0.0)
    pace.batch_done(published=4, committed_meanwhile=True)
    pace.batch_started(0.020)
    pace.batch_done(published=0, committed_meanwhile=True)
    assert pace.wait_before_next(0.021) == 0.0


def test_no_linger_configured_never_waits() -> None:
    pace = Pace(0.0)
    pace.batch_started(0.0)
    pace.batch_done(published=9, committed_meanwhile=True)
    assert pace.wait_before_next(0.0) == 0.0
