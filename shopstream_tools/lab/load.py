"""The load generators, run as child processes with their own CPU measured.

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

import base64
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT
from shopstream_tools.bench import parse_proc_stat
from shopstream_tools.bench.cpu import CLOCK_TICKS_PER_SECOND
from shopstream_tools.lab.hdr import Latencies, corrected_latency_ns

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


# --- Locust -------------------------------------------------------------------------------------
@dataclass
class LocustPlan:
    """What the Locust users do (see the locustfile for each task)."""

    host: str
    weights: dict[str, int]  # task -> weight: search, by_id, list_orders, place_order
    data_file: Path  # JSON: product ids, order products, customers, search windows
    users: int = 10
    spawn_rate: float = 100.0
    seconds: float = 10.0
    think_seconds: float = 0.0
    mode: str = "async"  # orders' processing mode
    phases: Sequence[tuple[float, int]] = ()  # burst: (seconds, users) one after the other
    metrics_port: int = 0  # Prometheus metrics while it runs (0: none)

    def env(self, out: Path, status: Path) -> dict[str, str]:
        return {
            "LAB_WEIGHTS": ",".join(f"{k}={v}" for k, v in self.weights.items()),
            "LAB_DATA": str(self.data_file),
            "LAB_OUT": str(out),
            "LAB_STATUS": str(status),
            "LAB_THINK": str(self.think_seconds),
            "LAB_MODE": self.mode,
            "LAB_PHASES": json.dumps([[s, u, self.spawn_rate] for s, u in self.phases]),
            "LAB_METRICS_PORT": str(self.metrics_port or ""),
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def duration(self) -> float:
        return sum(s for s, _ in self.phases) if self.phases else self.seconds


def run_locust(
    plan: LocustPlan,
    workdir: Path,
    name: str,
    stop: threading.Event,
    on_start: Callable[[int], None],
    progress: Progress,
) -> dict[str, Any]:
    out, status = workdir / f"{name}.locust.json", workdir / f"{name}.locust-status.json"
    argv = [
        sys.executable, "-m", "locust",
        "-f", str(LOCUSTFILE),
        "--headless",
        "--host", plan.host,
        "--only-summary",
        "--loglevel", "WARNING",
        "--stop-timeout", "0",
    ]  # fmt: skip
    if not plan.phases:
        argv += ["-u", str(plan.users), "-r", str(plan.spawn_rate), "-t", f"{plan.seconds:g}s"]
    child = Child(argv, workdir / f"{name}.locust.log", plan.env(out, status), signal.SIGTERM)
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= 2.0:
            last[0] = elapsed
            try:
                progress({"elapsed": elapsed, **json.loads(status.read_text())})
            except (OSError, ValueError):
                progress({"elapsed": elapsed})

    done = child.run(stop, on_start, tick, deadline=plan.duration + 30)
    if not out.exists():
        raise RuntimeError(f"Locust wrote no results (exit {done.exit_code}); see {child.log}")
    raw = json.loads(out.read_text())
    saturated = done.cores >= LOCUST_SATURATED_CORES
    why = f"Locust used {done.cores:.2f} of the 1 core it can use" if saturated else ""
    return summarize_locust(raw) | {"loadgen": loadgen_record("locust", done, saturated, why)}


def summarize_locust(raw: dict[str, Any]) -> dict[str, Any]:
    """Totals, per-request-name HDR summaries and the timeline from the locustfile's JSON."""
    per_name: dict[str, Any] = {}
    everything = Latencies()
    for name, entry in raw["requests"].items():
        lat = Latencies.decode(entry["hdr"])
        everything.merge(lat)
        per_name[name] = {
            "requests": entry["count"],
            "failures": entry["failures"],
            "statuses": entry["statuses"],
            "latency_ms": lat.summary(),
            "spectrum_ms": lat.spectrum(),
            "hdr": entry["hdr"],
        }
    seconds = float(raw["seconds"])
    requests = sum(v["requests"] for v in per_name.values())
    failures = sum(v["failures"] for v in per_name.values())
    return {
        "tool": "locust",
        "seconds": seconds,
        "requests": requests,
        "failures": failures,
        "rate": requests / seconds if seconds > 0 else 0.0,
        "ok_rate": (requests - failures) / seconds if seconds > 0 else 0.0,
        "latency_ms": everything.summary(),
        "spectrum_ms": everything.spectrum(),
        "per_name": per_name,
        "timeline": raw["timeline"],
        "users": raw.get("users"),
        "started_wall": raw.get("started_wall"),
    }


# --- vegeta --------------------------------------------------------------------------------------
def vegeta_target(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> str:
    """One target line in vegeta's JSON format."""
    target: dict[str, Any] = {"method": method, "url": url}
    if body is not None:
        target["body"] = base64.b64encode(body).decode()
    if headers:
        target["header"] = {k: [v] for k, v in headers.items()}
    return json.dumps(target, separators=(",", ":"))


def write_targets(path: Path, lines: Iterable[str]) -> int:
    count = 0
    with path.open("w") as fh:
        for line in lines:
            fh.write(line + "\n")
            count += 1
    return count


@dataclass
class VegetaHit:
    seq: int
    sent_ns: int
    latency_ns: int
    status: int
    error: str


def parse_vegeta_csv(lines: Iterable[str]) -> list[VegetaHit]:
    """``vegeta encode --to csv``: timestamp, code, latency, bytes out, bytes in, error, body,
    attack, seq, method, url, headers."""
    hits = []
    for row in csv.reader(lines):
        if len(row) < 9:
            continue
        hits.append(VegetaHit(int(row[8]), int(row[0]), int(row[2]), int(row[1]), row[5]))
    return hits


def summarize_vegeta(hits: Sequence[VegetaHit], rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop figures: latencies from the schedule (HDR), how far the sender fell behind, and
    a per-second timeline (by scheduled second)."""
    if not hits:
        return {"tool": "vegeta", "requests": 0, "failures": 0, "rate": 0.0, "latency_ms": {}}
    start = min(h.sent_ns - round(h.seq * 1e9 / rate) for h in hits)
    corrected, raw, lateness = Latencies(), Latencies(), Latencies()
    statuses: Counter[str] = Counter()
    failures = 0
    per_second: dict[int, list[float]] = {}
    fails_per_second: Counter[int] = Counter()
    for h in hits:
        value = corrected_latency_ns(h.sent_ns, h.latency_ns, start, h.seq, rate)
        corrected.record_ms(value / 1e6)
        raw.record_ms(h.latency_ns / 1e6)
        lateness.record_ms(max(0, value - h.latency_ns) / 1e6 + 0.001)
        statuses[str(h.status)] += 1
        # vegeta reports every non-2xx as an error; 402 and 409 are business outcomes here
        bad = h.status == 0 or (h.status >= 400 and h.status not in BUSINESS_STATUSES)
        failures += bad
        second = int(h.seq / rate)
        per_second.setdefault(second, []).append(value / 1e6)
        fails_per_second[second] += bad
    last_sent = max(h.sent_ns for h in hits)
    sent_seconds = max((last_sent - start) / 1e9, 1e-9)
    timeline = []
    for second in sorted(per_second):
        values = Latencies.of_ms(per_second[second])
        timeline.append(
            {
                "t": second + 1,
                "requests": len(per_second[second]),
                "failures": fails_per_second[second],
                "p50": values.percentile_ms(50),
                "p95": values.percentile_ms(95),
                "p99": values.percentile_ms(99),
            }
        )
    return {
        "tool": "vegeta",
        "target_rate": rate,
        "seconds": seconds,
        "requests": len(hits),
        "failures": failures,
        "rate": len(hits) / seconds if seconds > 0 else 0.0,
        "ok_rate": (len(hits) - failures) / seconds if seconds > 0 else 0.0,
        "sent_rate": len(hits) / sent_seconds if len(hits) > 1 else 0.0,
        "statuses": dict(statuses),
        "latency_ms": corrected.summary(),
        "spectrum_ms": corrected.spectrum(),
        "uncorrected_latency_ms": raw.summary(),
        "send_lateness_ms": lateness.summary(),
        "hdr": corrected.encode(),
        "timeline": timeline,
    }


def run_vegeta(
    targets: Path,
    rate: float,
    seconds: float,
    workdir: Path,
    name: str,
    stop: threading.Event,
    on_start: Callable[[int], None],
    progress: Progress,
    timeout_seconds: float = 30.0,
    metrics_port: int = 0,
) -> dict[str, Any]:
    if not VEGETA.exists():
        raise RuntimeError(f"{VEGETA} is missing: run scripts/bootstrap.sh")
    results = workdir / f"{name}.vegeta.bin"
    argv = [
        str(VEGETA), "attack",
        f"-targets={targets}", "-format=json", "-lazy",
        f"-rate={rate:g}/s", f"-duration={seconds:g}s",
        f"-timeout={timeout_seconds:g}s",
        f"-output={results}",
        "-keepalive=true",
    ]  # fmt: skip
    if metrics_port:
        argv.append(f"-prometheus-addr=127.0.0.1:{metrics_port}")
    child = Child(argv, workdir / f"{name}.vegeta.log", {}, signal.SIGINT)
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= 2.0:
            last[0] = elapsed
            progress({"elapsed": elapsed, "rate": rate})

    done = child.run(stop, on_start, tick, deadline=seconds + timeout_seconds + 10)
    encoded = subprocess.run(
        [str(VEGETA), "encode", "--to", "csv", str(results)],
        capture_output=True,
        text=True,
        check=False,
    )
    hits = parse_vegeta_csv(encoded.stdout.splitlines())
    ran = min(seconds, done.wall_seconds)
    summary = summarize_vegeta(hits, rate, ran)
    behind = bool(hits) and summary["sent_rate"] < VEGETA_BEHIND_RATIO * rate and not done.interrupted
    why = (
        f"vegeta sent {summary['sent_rate']:.0f}/s of the {rate:.0f}/s scheduled" if behind else ""
    )
    results.unlink(missing_ok=True)
    return summary | {"loadgen": loadgen_record("vegeta", done, behind, why)}
