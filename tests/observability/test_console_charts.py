"""The console's chart catalogue, without a platform: units and alert thresholds per panel."""

from __future__ import annotations

import re

import yaml

from shopstream_tools.console import charts

KNOWN_UNITS = {"s", "ms", "bytes", "bytes/s", "/s", "req/s", "%"}


def test_every_chart_has_a_unit() -> None:
    for board, found in charts.boards().items():
        for c in found:
            assert c.unit and c.unit != "short", (board, c.title)
            # a count names what it counts; otherwise the axis formatter knows the unit
            assert c.unit in KNOWN_UNITS or re.fullmatch(r"[a-z ()/0-9-]+", c.unit), (board, c.title, c.unit)


def test_every_alert_threshold_is_drawn_on_a_panel() -> None:
    alerts = yaml.safe_load((charts.RULES / "alerts.yml").read_text())
    # an equality (TargetDown: up == 0) is a state, not a level to draw
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"] if "==" not in r["expr"]}
    drawn = {t.alert for found in charts.boards().values() for c in found for t in c.thresholds}
    assert drawn == names, names - drawn


def test_thresholds_follow_the_alerts_values_and_selectors() -> None:
    health = {c.title: c for c in charts.boards()["health"]}
    assert [(t.alert, t.value) for t in health["p99 latency"].thresholds] == [("HttpLatencyP99OverObjective", 0.5)]
    assert [t.value for t in health["Dead-letter messages"].thresholds] == [0.0]
    kafka = {c.title: c for c in charts.boards()["shopstream-kafka"]}
    # all topics' retained messages: the dead-letter alert's selector does not apply
    assert kafka["Messages retained by topic"].thresholds == []
    assert health["Requests per second"].thresholds == []


def test_a_chart_is_addressed_by_board_and_position_only() -> None:
    assert charts.chart("health", 0) is not None
    assert charts.chart("health", len(charts.boards()["health"])) is None
    assert charts.chart("health", -1) is None
    assert charts.chart("no-such-board", 0) is None
