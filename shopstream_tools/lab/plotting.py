"""What every chart shares: matplotlib without a display, the test's rows or why there are none,
saving a figure, the colours of the modes and stages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

COLORS = {"sync": "#c0392b", "async": "#2471a3"}
STAGE_COLORS = {"publish": "#7fb3d5", "reserve": "#f5b041", "pay": "#58d68d", "confirm": "#af7ac5"}


class NoData(Exception):
    """The test behind a chart did not measure what it needs."""


def rows_of(summary: Mapping[str, Any], test: str) -> list[dict[str, Any]]:
    entry = summary.get("tests", {}).get(test) or {}
    rows = entry.get("rows") or []
    if not rows:
        raise NoData(entry.get("skipped") or f"{test} did not run")
    return list(rows)


def save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

