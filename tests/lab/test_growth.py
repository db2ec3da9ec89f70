"""The growth table judges large against young per figure, with the goal's direction."""

from __future__ import annotations

import json
from pathlib import Path

from shopstream_tools.lab import growth


def _run(folder: Path, rate: float, p99: float, cores: float) -> Path:
    folder.mkdir()
    step = {
        "test": "PT-01",
        "step": "users=100",
        "load": {"ok_rate": rate, "latency_ms": {"p99": p99}},
        "cpu_cores": {"product-1": cores, "postgres": cores, "loadgen": 5.0, "machine": 9.0},
    }
    (folder / "PT-01.json").write_text(json.dumps({"steps": [step]}))
    return folder


def test_cpu_per_operation_counts_the_platform_not_the_load_generator(tmp_path: Path) -> None:
    run = _run(tmp_path / "young", rate=500.0, p99=100.0, cores=0.25)
    assert growth.steps(run)["PT-01 users=100"]["cpu_ms_per_op"] == 1.0  # 0.5 cores / 500 ops


def test_figures_beyond_the_goal_are_called_over(tmp_path: Path) -> None:
    young = _run(tmp_path / "young", rate=500.0, p99=100.0, cores=0.25)
    large = _run(tmp_path / "large", rate=400.0, p99=110.0, cores=0.35)
    rows = {line.split(" | ")[1]: line for line in growth.table(young, large).splitlines()[2:]}
    assert rows["throughput"].endswith("0.80x over |")  # under 1/1.2 of the young throughput
    assert rows["p99_ms"].endswith("1.10x ok |")
    assert rows["cpu_ms_per_op"].endswith("1.75x over |")  # 0.7 cores / 400 ops
