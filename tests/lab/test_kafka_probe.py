"""The lab's Kafka probe reads offsets and lag in a child process: a crash of librdkafka there
(seen as SIGSEGV when a frozen broker woke up, PT-07) costs a sample, not the lab."""

from __future__ import annotations

import os
import signal

import pytest

from shopstream_tools.lab.samplers import KafkaProbe
from shopstream_tools.lab.testbed import TOPICS

pytestmark = pytest.mark.integration


def test_a_probe_whose_child_crashed_answers_from_a_new_one(platform) -> None:
    probe = KafkaProbe(platform.settings.kafka_servers, TOPICS)
    try:
        first = probe.sample()
        assert set(first["messages"]) == set(TOPICS)
        (child,) = list(probe._pool._processes)
        os.kill(child, signal.SIGSEGV)  # what librdkafka did to the lab's own process
        again = probe.sample()
        assert set(again["messages"]) == set(TOPICS)
        assert list(probe._pool._processes) != [child]
    finally:
        probe.close()
