"""The load generators, run as child processes with their own CPU measured (``Child``); the
generators themselves are in ``locust_load`` and ``vegeta_load``.

* Locust (scenario users, closed loop): ``performance-tests/locust/shopstream_users.py`` records
  every request in HDR histograms and writes them, a per-second timeline and status counts to a
  JSON file; while it runs it keeps a one-line status file the lab shows as progress.
* vegeta (open loop, constant rate): every request is scheduled at start + seq/rate whatever
  happens to the earlier ones; its per-request results are read back and each latency is counted
  from the request's *scheduled* time (``hdr.corrected_latency_ns``), so a generator that fell
  behind cannot hide a stall (no coordinated omission).

Both serve Prometheus metrics on ``metrics_port`` while they run (``shopstream_tools.lab.scrape``
registers them as a scrape target): Locust from the locustfile, vegeta with ``-prometheus-addr``.

A run stops early when ``stop`` is set (Ctrl-C): the generator is asked to stop (SIGTERM to
Locust, SIGINT to vegeta), writes what it measured, and that is kept.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT
from shopstream_tools.bench import parse_proc_stat
from shopstream_tools.bench.cpu import CLOCK_TICKS_PER_SECOND

LOCUSTFILE = PROJECT_ROOT / "performance-tests" / "locust" / "shopstream_users.py"
VEGETA = PROJECT_ROOT / ".tools" / "bin" / "vegeta"
# One core is all a Locust process (one Python thread) can use: near it, it is the bottleneck.
LOCUST_SATURATED_CORES = 0.85
# An open-loop generator that sent fewer than this share of its schedule fell behind.
VEGETA_BEHIND_RATIO = 0.97
# answers that are the shop's decision, not a failure: payment declined, out of stock
BUSINESS_STATUSES = (402, 409)

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Finished:
    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    interrupted: bool

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass
class Child:
    """A load generator process: started, watched (progress, Ctrl-C), measured from /proc."""

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: int = signal.SIGTERM

    def run(
        self,
        stop: threading.Event,
        on_start: Callable[[int], None] = lambda pid: None,
        tick: Callable[[float], None] = lambda elapsed: None,
        deadline: float | None = None,
    ) -> Finished:
        with self.log.open("w") as sink:
            started = time.monotonic()
            proc = subprocess.Popen(
                self.argv,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # the terminal's Ctrl-C reaches the lab, not the child
            )
        on_start(proc.pid)
        interrupted = False
        signalled_at = 0.0
        while True:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                break
            now = time.monotonic()
            late = deadline is not None and now - started > deadline
            if (stop.is_set() or late) and not signalled_at:
                interrupted = stop.is_set()
                os.kill(proc.pid, self.stop_signal)
                signalled_at = now
            elif signalled_at and now - signalled_at > 20:
                os.kill(proc.pid, signal.SIGKILL)
            tick(now - started)
            time.sleep(0.25)
        wall = time.monotonic() - started
        try:  # the exited child is not reaped yet: its /proc entry has all its CPU time
            ticks = parse_proc_stat(Path(f"/proc/{proc.pid}/stat").read_text()).own
            cpu = ticks / CLOCK_TICKS_PER_SECOND
        except (OSError, ValueError):
            cpu = -1.0
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if cpu < 0:
            cpu = usage.ru_utime + usage.ru_stime
        return Finished(proc.returncode, wall, cpu, interrupted)


def loadgen_record(tool: str, done: Finished, saturated: bool, why: str) -> dict[str, Any]:
    return {
        "tool": tool,
        "exit_code": done.exit_code,
        "wall_seconds": round(done.wall_seconds, 3),
        "cpu_seconds": round(done.cpu_seconds, 3),
        "cores": round(done.cores, 3),
        "saturated": saturated,
        "saturation_reason": why,
        "interrupted": done.interrupted,
    }
