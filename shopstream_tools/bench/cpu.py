"""CPU from /proc: per process, per process tree and for the whole machine.

The load generator runs on the same cores as the platform it loads, so every figure is reported
with what each side cost; this module reads those costs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# /proc counts CPU time in clock ticks
CLOCK_TICKS_PER_SECOND = float(os.sysconf("SC_CLK_TCK"))


@dataclass(frozen=True)
class ProcTimes:
    """CPU times (clock ticks) of one process from /proc/<pid>/stat."""

    pid: int
    comm: str
    state: str
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int

    @property
    def own(self) -> int:
        """utime + stime: this process, all its threads."""
        return self.utime + self.stime

    @property
    def total(self) -> int:
        """Its own time plus that of the children it has reaped (backends that came and went)."""
        return self.own + self.cutime + self.cstime


def parse_proc_stat(text: str) -> ProcTimes:
    # comm may hold spaces and parentheses: it runs from the first "(" to the last ")".
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = rest.split()  # fields[0] is field 3 (state) of proc(5)
    if len(fields) < 15:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    return ProcTimes(
        pid=int(pid),
        comm=comm,
        state=fields[0],
        ppid=int(fields[1]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
    )


def parse_cpu_line(text: str) -> tuple[int, int]:
    """(busy, total) ticks of all cores from /proc/stat's first line; idle and iowait are not busy."""
    line = text.splitlines()[0]
    words = line.split()
    if words[0] != "cpu":
        raise ValueError(f"not the aggregate cpu line: {line!r}")
    ticks = [int(w) for w in words[1:]]
    # guest time is already inside user; counting it twice would overstate busy
    total = sum(ticks[:8])
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return total - idle, total


def read_proc_stats(proc: Path = Path("/proc")) -> dict[int, ProcTimes]:
    stats: dict[int, ProcTimes] = {}
    for path in proc.glob("[0-9]*/stat"):
        try:
            entry = parse_proc_stat(path.read_text())
        except (OSError, ValueError):
            continue  # exited between the listing and the read
        stats[entry.pid] = entry
    return stats


def tree(stats: dict[int, ProcTimes], roots: Iterable[int]) -> set[int]:
    """The roots that exist and all their descendants."""
    children: dict[int, list[int]] = {}
    for entry in stats.values():
        children.setdefault(entry.ppid, []).append(entry.pid)
    found: set[int] = set()
    todo = [r for r in roots if r in stats]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def group_ticks(stats: dict[int, ProcTimes], roots: Iterable[int]) -> int:
    """CPU ticks spent so far by a process tree, reaped children included.

    Differences of this figure between two snapshots are exact as long as every process that
    left the tree was reaped by a member of it (PostgreSQL's postmaster reaps its backends).
    """
    return sum(stats[pid].total for pid in tree(stats, roots))


def cores(ticks: float, seconds: float, hz: float) -> float:
    return ticks / hz / seconds if seconds > 0 else 0.0


class CpuSampler:
    """Samples /proc every `interval` seconds while a load runs; CPU by group of processes.

    For each group (a name and the root pids of its process trees) it reports the mean cores used
    over the whole run and the busiest single process in any one interval (a process near 1.0
    core is saturated: nothing can run it faster).
    """

    def __init__(self, groups: dict[str, list[int]], interval: float = 1.0) -> None:
        self.groups = groups
        self.interval = interval
        self.hz = CLOCK_TICKS_PER_SECOND
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._peak: dict[str, tuple[float, str]] = {}
        self._first: dict[int, ProcTimes] = {}
        self._machine_first = (0, 0)
        self._started = 0.0
        self._driver_first = 0.0

    def start(self) -> None:
        self._first = read_proc_stats()
        self._machine_first = parse_cpu_line(Path("/proc/stat").read_text())
        self._driver_first = _own_cpu_seconds()
        self._started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        previous, at = self._first, self._started
        while not self._stop.wait(self.interval):
            now_stats, now = read_proc_stats(), time.monotonic()
            for name, roots in self.groups.items():
                for pid in tree(now_stats, roots):
                    before = previous.get(pid)
                    if before is None:
                        continue
                    used = cores(now_stats[pid].own - before.own, now - at, self.hz)
                    if used > self._peak.get(name, (-1.0, ""))[0]:
                        self._peak[name] = (used, f"{now_stats[pid].comm}[{pid}]")
            previous, at = now_stats, now

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        last = read_proc_stats()
        machine = parse_cpu_line(Path("/proc/stat").read_text())
        seconds = time.monotonic() - self._started
        result: dict[str, Any] = {"seconds": round(seconds, 3), "groups": {}}
        for name, roots in self.groups.items():
            used = group_ticks(last, roots) - group_ticks(self._first, roots)
            peak, where = self._peak.get(name, (0.0, ""))
            result["groups"][name] = {
                "cores": round(cores(used, seconds, self.hz), 3),
                "busiest_process": where,
                "busiest_process_peak_cores": round(peak, 3),
            }
        busy = machine[0] - self._machine_first[0]
        total = machine[1] - self._machine_first[1]
        ncpu = os.cpu_count() or 1
        result["machine_busy_cores"] = round(busy / total * ncpu, 3) if total else 0.0
        result["driver_cores"] = round((_own_cpu_seconds() - self._driver_first) / seconds, 3)
        return result


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
