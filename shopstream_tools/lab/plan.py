"""What a performance test is, for the runner, the analysis, the charts and the report: its id and
title, how it runs (steps measured on the lab platform), how its steps become figures, its charts
and its part of the report. Each test is one module in ``shopstream_tools.lab.tests``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream_tools.lab.context import Lab

Steps = list[dict[str, Any]]
Ceilings = Mapping[str, float | None]
# (summary, every test's raw result, where to write the PNG) -> the PNG; raises plotting.NoData
Draw = Callable[[Mapping[str, Any], Mapping[str, Any], Path], Path]
# (the test's summary entry, every chart drawn, titles of the charts shown so far) -> HTML parts
Section = Callable[[Mapping[str, Any], Mapping[str, Mapping[str, str]], set[str]], list[str]]


# summary -> the one sentence the chart proves, from the same figures (None: nothing to say)
Reading = Callable[[Mapping[str, Any]], str | None]


def _nothing(summary: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class Chart:
    title: str
    draw: Draw
    reading: Reading = _nothing


@dataclass(frozen=True)
class PerformanceTest:
    id: str  # "PT-01"
    title: str
    run: Callable[[Lab], Steps]
    analyse: Callable[[Steps, Ceilings, float], dict[str, Any]]  # steps, ceilings, machine cores
    charts: Mapping[str, Chart]
    section: Section
    markdown: Sequence[tuple[str, str, str]]  # the columns of its table in docs/performance
    needs_orders: bool = False  # skipped when the build has no order service
    # the charts on its slides, in order (a chart of several tests may be one of them); none: its
    # first chart
    slides: Sequence[str] = ()
    # False: in the report only; the deck keeps to 15 slides (the strategy comparisons)
    on_slides: bool = True

    @property
    def slide_charts(self) -> Sequence[str]:
        return self.slides or tuple(self.charts)[:1]
