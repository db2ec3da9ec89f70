"""Summary, charts and report again from a run's raw results, after a change to the analysis:
``python -m shopstream_tools.lab.rebuild performance-tests/results/<run-id>``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shopstream_tools.lab import analysis, charts, report
from shopstream_tools.lab.tests import TESTS


def rebuild(run_dir: Path) -> Path:
    environment = json.loads((run_dir / "environment.json").read_text())
    ceilings = json.loads((run_dir / "ceilings.json").read_text())
    tests = {
        t: json.loads((run_dir / f"{t}.json").read_text())
        for t in TESTS
        if (run_dir / f"{t}.json").exists()
    }
    summary = analysis.summarize(ceilings, tests, environment["machine"].get("cores") or 2)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    made = charts.draw_all(summary, tests, run_dir / "charts")
    return report.write(run_dir / "report.html", environment, ceilings, summary, tests, made)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m shopstream_tools.lab.rebuild <run folder>", file=sys.stderr)
        return 2
    print(rebuild(Path(args[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
