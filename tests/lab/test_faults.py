"""PT-07's figures from a step record: errors per fault window, throughput and backlog recovery."""

from __future__ import annotations

from shopstream_tools.lab.tests import pt07_faults


def _step() -> dict[str, object]:
    started = 1000.0
    rate = [10] * 10 + [2, 2, 4, 8, 10, 10, 10, 10, 10, 10] + [10] * 10
    fails = [0] * 10 + [3, 1] + [0] * 18
    timeline = [{"t": t + 1, "requests": r, "failures": f} for t, (r, f) in
                enumerate(zip(rate, fails, strict=True))]  # fmt: skip
    # the sampler started 2 s before the load; backlog grows after the second fault, then drains
    backlog = [0] * 22 + [50, 40, 30, 5, 0, 0, 0, 0, 0, 0]
    samples = [{"t": float(t), "backlog": {"order": b}, "kafka": {"lag": {}}} for t, b in
               enumerate(backlog)]  # fmt: skip
    return {
        "load": {"timeline": timeline, "started_wall": started},
        "sampler_started_wall": started - 2,
        "samples": samples,
        "params": {"window_s": 10},
        "faults": [{"fault": "order instance killed", "wall": started + 10, "outcome": "killed"},
                   {"fault": "broker stopped 15 s", "wall": started + 20, "outcome": "stopped"}],
    }  # fmt: skip


def test_each_fault_gets_its_window_errors_and_recovery_times() -> None:
    first, second = pt07_faults.fault_rows(_step())

    assert (first["client_errors"], first["requests"]) == (4, 76)
    assert first["at_s"] == 10.0
    # answered/s (3-s trailing mean) is back to 90% of the baseline from t=16 and holds
    assert first["throughput_back_s"] == 6.0
    assert first["backlog_drained_s"] == 0.0
    assert second["client_errors"] == 0
    assert second["throughput_back_s"] == 0.0
    # the backlog (sample t - 2 on the load's clock) is under 10 again 3 s after the broker stop
    assert second["backlog_drained_s"] == 3.0


def test_a_trailing_mean_smooths_one_slow_second() -> None:
    assert pt07_faults.smoothed([10, 10, 1, 10]) == [10, 10, 7, 7]
