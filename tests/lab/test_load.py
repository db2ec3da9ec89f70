"""A load generator child: measured from /proc, stopped cleanly by Ctrl-C (the stop event)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from shopstream_tools.lab.load import Child

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done')"
STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (print('writing what was measured'), sys.exit(0)))\n"
    "time.sleep(30)"
)


def test_a_child_runs_to_its_end_with_its_cpu_measured(tmp_path: Path) -> None:
    pids: list[int] = []
    done = Child([sys.executable, "-c", BUSY], tmp_path / "out.txt").run(threading.Event(), pids.append)
    assert done.exit_code == 0 and not done.interrupted
    assert done.cpu_seconds >= 0.25  # its own CPU, read from /proc before it was reaped
    assert 0 < done.cores <= 1.5
    assert pids and (tmp_path / "out.txt").read_text().strip() == "done"


def test_the_stop_event_asks_the_child_to_stop_and_keeps_its_output(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    done = Child([sys.executable, "-c", STUBBORN], tmp_path / "out.txt").run(stop)
    assert done.interrupted
    assert time.monotonic() - started < 10
    assert "writing what was measured" in (tmp_path / "out.txt").read_text()


def test_a_child_past_its_deadline_is_stopped_but_not_called_interrupted(tmp_path: Path) -> None:
    done = Child([sys.executable, "-c", STUBBORN], tmp_path / "out.txt").run(
        threading.Event(), deadline=0.5
    )
    assert not done.interrupted
    assert done.wall_seconds < 10
