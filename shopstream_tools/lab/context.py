"""The running lab: its settings, profile, run folder and what it measured so far, shared by the
runner and every test module (``shopstream_tools.lab.tests``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream_tools.lab.profiles import Profile
from shopstream_tools.lab.stats import median
from shopstream_tools.lab.workload import Workload

READ_WEIGHTS = {"search": 3, "by_id": 6, "list_orders": 1}


def say(line: str) -> None:
    print(line, flush=True)  # progress must show at once, also when the output is a file


class Interrupted(Exception):
    pass


class CannotStart(Exception):
    """The lab platform cannot start (a port taken by another program)."""


@dataclass
class Lab:
    settings: Settings
    profile: Profile
    run_dir: Path
    stop: threading.Event
    log: Callable[[str], object]
    workload: Workload | None = None
    order_service: bool = False
    ceilings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pgbench_scripts: dict[str, list[Path]] = field(default_factory=dict)
    pgbench_products: int = 0
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)  # the running test's, as measured
    loadgen: str = "locust"  # closed-loop steps: locust, or jmeter where the test has a JMeter plan

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"

    @property
    def raw(self) -> Path:
        path = self.run_dir / "raw"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check_stop(self) -> None:
        if self.stop.is_set():
            raise Interrupted()

    def ceiling(self, name: str) -> float | None:
        return median(c["rate"] for c in self.ceilings.get(name, []))

    def read_weights(self) -> dict[str, int]:
        w = dict(READ_WEIGHTS)
        if not self.order_service:
            w.pop("list_orders")
        return w


