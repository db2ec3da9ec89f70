"""From step records to figures, the nine charts and one self-contained HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopstream_tools.lab import analysis, charts, report
from tests.lab import builders

ENVIRONMENT = {
    "run_id": "20260101T000000Z-abc1234",
    "profile": {"name": "quick"},
    "tests": ["PT-01", "PT-02", "PT-03", "PT-04", "PT-05"],
    "seconds": 900,
    "git_revision": "abc1234",
    "machine": {"cores": 2, "cpu_model": "test cpu", "load_average_before": [0.5, 0.4, 0.3]},
    "versions": {"locust": "2.47.0"},
    "settings": {"SHOPSTREAM_GATEWAY_PORT": "38080"},
}


def test_figures_are_given_as_ratios_to_the_median_ceilings() -> None:
    summary = analysis.summarize(builders.ceilings(), builders.tests(), 2)
    assert summary["ceilings"]["nginx-fixed"]["median"] == 105_000
    pt01 = summary["tests"]["PT-01"]
    first = pt01["rows"][0]
    assert first["x nginx-fixed"] == pytest.approx(first["ok_rate"] / 105_000)
    assert first["x pgbench-read-mix"] == pytest.approx(first["ok_rate"] / 30_000)
    # 9.5 req/s per user at 10 users, best 850 req/s: the knee is at ~89 users
    assert pt01["saturation"]["users"] == pytest.approx(850 / 9.5)
    assert pt01["saturation"]["best_at_users"] == 500
    pt02 = summary["tests"]["PT-02"]["rows"]
    assert pt02[0]["x pgbench-order-path"] == pytest.approx(pt02[0]["ok_rate"] / 800)
    assert pt02[0]["e2e_p50_ms"] is not None


def test_scaling_gets_efficiency_and_both_models() -> None:
    pt03 = analysis.summarize(builders.ceilings(), builders.tests(), 2)["tests"]["PT-03"]
    eff = {r["instances"]: r["efficiency"] for r in pt03["rows"]}
    assert eff[1] == 1.0 and eff[2] == pytest.approx(0.7)
    assert pt03["usl"]["sigma"] > 0.3  # flat past 2 on 2 cores: contention
    demand = pt03["demand"]
    assert demand["demands_ms"]["service instances"] > 0
    assert [p["instances"] for p in demand["predict"]] == [1, 2, 4, 8]
    assert demand["mape_here"] >= 0


def test_partition_balance_and_burst_recovery() -> None:
    summary = analysis.summarize(builders.ceilings(), builders.tests(), 2)
    pt04 = summary["tests"]["PT-04"]["rows"][0]
    assert pt04["balance"]["max_over_mean"] == pytest.approx(1.2)
    assert pt04["x kafka-producer"] == pytest.approx(pt04["messages_per_s"] / pt04["kafka_ceiling"])
    pt05 = summary["tests"]["PT-05"]
    assert pt05["base_p95_ms"] == pytest.approx(30)
    assert pt05["recovery_seconds"] == pytest.approx(4)  # p95 60 until t=23, then 30
    assert pt05["peak_rate"] == 400


def test_tracing_cost_is_the_ratio_of_medians_and_of_each_repeat() -> None:
    summary = analysis.summarize(builders.ceilings(), builders.tests(), 2)
    entry = summary["tests"]["PT-06"]
    off, on = entry["arms"]
    assert (off["tracing"], on["tracing"]) == ("off", "0.1")
    assert off["ok_rate"] == pytest.approx(200) and on["ok_rate"] == pytest.approx(180)
    cost = entry["cost"]
    assert cost["throughput_ratio"] == pytest.approx(0.9)
    assert cost["paired_ratios"] == pytest.approx([0.9, 190 / 220, 0.95])
    assert cost["paired_median"] == pytest.approx(0.9)
    assert cost["off_spread"] == pytest.approx(220 / 180)
    # Zipkin's 0.1 core is platform CPU too: more CPU per order with tracing on
    assert cost["cpu_per_order_ratio"] > 1
    assert on["zipkin_ms_per_order"] == pytest.approx(1000 * 0.1 / 180)
    assert on["x pgbench-order-path"] == pytest.approx(180 / 800)
    # where the CPU went, per order: the relay is a relay, the instance an instance
    assert off["ms_per_order"]["order instances"] == pytest.approx(1000 * 0.3 / 200)
    assert off["ms_per_order"]["relays"] == pytest.approx(1000 * 0.05 / 200)
    assert off["ms_per_order"]["zipkin"] == 0 and on["ms_per_order"]["zipkin"] > 0
    assert "loadgen" not in off["ms_per_order"] and "lab" not in off["ms_per_order"]


def test_every_chart_and_the_report_are_produced(tmp_path: Path) -> None:
    tests = builders.tests()
    summary = analysis.summarize(builders.ceilings(), tests, 2)
    made = charts.draw_all(summary, tests, tmp_path / "charts")
    assert set(made) == set(charts.CHARTS)
    for name, chart in made.items():
        assert "path" in chart, f"{name}: {chart.get('missing')}"
        assert Path(chart["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = report.write(tmp_path / "report.html", ENVIRONMENT, builders.ceilings(), summary, tests, made).read_text()
    assert len(re.findall(r"src='data:image/png;base64,", html)) == len(charts.CHARTS)
    assert "cannot show scaling past 2 instances" in html
    assert "Universal Scalability Law" in html
    assert "Consistency audit <span class=ok>passed</span>" in html
    assert "http" not in html.replace("http://", "").split("<pre>")[0]  # nothing fetched from outside
    assert "<script" not in html


def test_a_chart_without_data_says_why_and_the_report_still_renders(tmp_path: Path) -> None:
    tests = builders.tests()
    tests["PT-02"] = {"test": "PT-02", "title": "x", "steps": [], "skipped": "no order service"}
    del tests["PT-05"]
    summary = analysis.summarize(builders.ceilings(), tests, 2)
    made = charts.draw_all(summary, tests, tmp_path)
    assert made["2-sync-vs-async"]["missing"] == "no order service"
    assert "PT-05" in made["7-burst"]["missing"]
    html = report.write(tmp_path / "r.html", ENVIRONMENT, builders.ceilings(), summary, tests, made).read_text()
    assert "Skipped: no order service" in html
    assert "not drawn" in html


def test_a_saturated_load_generator_is_flagged(tmp_path: Path) -> None:
    tests = builders.tests()
    gen = tests["PT-01"]["steps"][3]["load"]["loadgen"]
    gen.update(saturated=True, saturation_reason="Locust used 0.97 of the 1 core it can use")
    summary = analysis.summarize(builders.ceilings(), tests, 2)
    assert summary["loadgen_saturated"] == ["PT-01 users=500: Locust used 0.97 of the 1 core it can use"]
    made = charts.draw_all(summary, tests, tmp_path)
    html = report.write(tmp_path / "r.html", ENVIRONMENT, builders.ceilings(), summary, tests, made).read_text()
    assert "The load generator saturated" in html


def test_the_same_figures_as_markdown_for_the_docs() -> None:
    summary = analysis.summarize(builders.ceilings(), builders.tests(), 2)
    text = report.markdown(summary)
    assert "| nginx-fixed | 105,000 | req/s |" in text
    for test in ("PT-01", "PT-02", "PT-03", "PT-04", "PT-05"):
        assert f"**{test}**" in text
    assert "audit: no stock oversold ok" in text
