"""HDR histogram math and the open-loop correction for coordinated omission."""

from __future__ import annotations

import pytest

from shopstream_tools.lab.hdr import PERCENTILES, Latencies, corrected_latency_ns, intended_start_ns


def test_percentiles_of_a_uniform_distribution_are_exact_within_the_precision() -> None:
    lat = Latencies.of_ms(float(v) for v in range(1, 10_001))  # 1 .. 10000 ms
    summary = lat.summary()
    assert summary["count"] == 10_000
    for p in PERCENTILES:
        exact = p / 100 * 10_000
        assert summary[f"p{p:g}"] == pytest.approx(exact, rel=1e-3)
    assert summary["max"] == pytest.approx(10_000, rel=1e-3)
    assert summary["mean"] == pytest.approx(5000.5, rel=1e-3)


def test_a_rare_slow_request_shows_in_the_tail_only() -> None:
    lat = Latencies.of_ms([1.0] * 999 + [500.0])
    assert lat.percentile_ms(99) == pytest.approx(1.0, rel=1e-3)
    assert lat.percentile_ms(99.9) == pytest.approx(1.0, rel=1e-3)
    assert lat.percentile_ms(100) == pytest.approx(500.0, rel=1e-3)


def test_merge_equals_recording_everything_in_one() -> None:
    a = Latencies.of_ms([1.0, 2.0, 3.0])
    b = Latencies.of_ms([10.0, 20.0])
    both = Latencies.of_ms([1.0, 2.0, 3.0, 10.0, 20.0])
    assert a.merge(b).summary() == both.summary()


def test_encoding_round_trips_the_whole_distribution() -> None:
    lat = Latencies.of_ms([0.25, 3.5, 3.5, 80.0, 1200.0])
    again = Latencies.decode(lat.encode())
    assert again.summary() == lat.summary()
    assert again.spectrum() == lat.spectrum()


def test_empty_distributions_say_so() -> None:
    empty = Latencies()
    assert empty.summary() == {}
    assert empty.encode() == ""
    assert Latencies.decode("").count == 0
    with pytest.raises(ValueError):
        empty.percentile_ms(50)


def test_values_outside_the_range_are_clamped_and_counted() -> None:
    lat = Latencies()
    lat.record_ms(0.0)  # below 1 µs
    lat.record_ms(10 * 3600 * 1000.0)  # ten hours
    assert lat.clamped == 2
    assert lat.count == 2


def test_intended_start_follows_the_constant_rate() -> None:
    assert intended_start_ns(1_000, 0, 100) == 1_000
    assert intended_start_ns(1_000, 100, 100) == 1_000 + 1_000_000_000
    assert intended_start_ns(0, 3, 1000) == 3_000_000


def test_a_generator_that_fell_behind_is_charged_the_wait() -> None:
    # at 100/s request 50 was due 0.5 s in, but the generator only sent it 1.5 s in (it was stuck
    # behind a stalled server): the user waited 1 s before the 2 ms of service
    start = 10**12
    sent = start + 1_500_000_000
    assert corrected_latency_ns(sent, 2_000_000, start, 50, 100) == 1_002_000_000
    # on time (or early): nothing added
    assert corrected_latency_ns(start + 500_000_000, 2_000_000, start, 50, 100) == 2_000_000
    assert corrected_latency_ns(start + 400_000_000, 2_000_000, start, 50, 100) == 2_000_000


def test_the_stall_shows_in_corrected_percentiles_but_hides_in_raw_ones() -> None:
    """A 1 s stall at 100/s: a closed-loop view sees one slow request, the schedule sees 100."""
    rate, start = 100.0, 0
    raw, corrected = Latencies(), Latencies()
    sent = start
    for seq in range(1000):
        due = intended_start_ns(start, seq, rate)
        sent = max(sent, due)
        service = 1_000_000_000 if seq == 100 else 1_000_000  # one 1 s stall
        raw.record_ms(service / 1e6)
        corrected.record_ms(corrected_latency_ns(sent, service, start, seq, rate) / 1e6)
        sent += service  # one connection: the next waits for this one (coordinated omission)
    assert raw.percentile_ms(95) == pytest.approx(1.0, rel=1e-2)
    assert corrected.percentile_ms(95) > 400
