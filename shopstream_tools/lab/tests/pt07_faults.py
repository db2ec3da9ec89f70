"""PT-07 Faults under load: a steady mixed load (reads, async and sync orders), and one fault after
another while it runs, each given the same window: kill -9 of an order instance, of the order
relay, of the product saga consumer, of PostgreSQL; the broker stopped (SIGSTOP) for 15 s; the
payment provider hanging for 30 s; a broker killed when the platform runs three. Nobody types a
command: the supervisor restarts what died. Per fault: the requests clients saw fail, the seconds
until throughput is back to 90% of the baseline, and until the backlog (outbox, consumer lag) is
drained; the run's audit then says whether anything was lost, oversold or applied twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shopstream_tools.lab import drivers, plotting, stats
from shopstream_tools.lab.context import Lab
from shopstream_tools.lab.figures import backlog_series, step_row
from shopstream_tools.lab.html import COMMON, LOADGEN, fmt, image, table
from shopstream_tools.lab.plan import Chart, PerformanceTest
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.steps import measure

CHART = "10-faults"
CHART_TITLE = "Faults under load: throughput and errors (PT-07)"
SIGSTOP_SECONDS = 15.0
PAYMENT_HANG_SECONDS = 30.0


def _kill(pid: int | None) -> str:
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGKILL)
    return f"pid {pid} killed"


def _process(name: str) -> Callable[[Lab], str]:
    def fault(lab: Lab) -> str:
        from shopstream_tools.runtime import processes

        return _kill(processes.read_pid(lab.settings, name))

    return fault


def _postgres(lab: Lab) -> str:
    from shopstream_tools.runtime import postgres

    return _kill(postgres.pid(lab.settings))


def _broker_stop(lab: Lab) -> str:
    from shopstream_tools.runtime import kafka_broker

    pid = kafka_broker.pid(lab.settings)
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGSTOP)
    threading.Timer(SIGSTOP_SECONDS, os.kill, (pid, signal.SIGCONT)).start()
    return f"pid {pid} stopped for {SIGSTOP_SECONDS:g} s"


def _broker_kill(lab: Lab) -> str:
    from shopstream_tools.runtime import kafka_broker

    if len(kafka_broker.nodes(lab.settings)) < 3:
        return "skipped: one broker (the HA profile runs three)"
    return _kill(kafka_broker.pid(lab.settings, 2))


def _payment_hang(lab: Lab) -> str:
    from services.order.adapters import payment_faults
    from services.order.adapters.payments import fault_file

    payment_faults.write(fault_file(lab.settings), "hang", PAYMENT_HANG_SECONDS)
    return f"provider hangs for {PAYMENT_HANG_SECONDS:g} s"


# In the order they are done; each gets the profile's window before the next.
FAULTS: tuple[tuple[str, Callable[[Lab], str]], ...] = (
    ("order instance killed", _process("order-1")),
    ("order relay killed", _process("order-relay")),
    ("product consumer killed", _process("product-consume")),
    ("broker stopped 15 s", _broker_stop),
    ("payment provider hangs 30 s", _payment_hang),
    ("a broker killed", _broker_kill),
    ("PostgreSQL killed", _postgres),
)


class Injector(threading.Thread):
    """Does each fault at its time from the start of the load; records when and what happened."""

    def __init__(self, lab: Lab, baseline: float, window: float) -> None:
        super().__init__(name="pt07-faults", daemon=True)
        self.lab, self.baseline, self.window = lab, baseline, window
        self.done: list[dict[str, Any]] = []
        self.started_wall = time.time()
        self.cancel = threading.Event()

    def run(self) -> None:
        for i, (name, fault) in enumerate(FAULTS):
            at = self.started_wall + self.baseline + i * self.window
            if self.cancel.wait(max(0.0, at - time.time())) or self.lab.stop.is_set():
                return
            try:
                outcome = fault(self.lab)
            except Exception as exc:  # a fault that cannot be done is reported, not fatal
                outcome = f"could not be done: {exc}"
            self.lab.log(f"  PT-07 {name}: {outcome}")
            self.done.append({"fault": name, "wall": time.time(), "outcome": outcome})


def run(lab: Lab) -> list[dict[str, Any]]:
    p = lab.profile
    seconds = p.pt07_baseline_seconds + len(FAULTS) * p.pt07_window_seconds
    weights = {**lab.read_weights(), **({"place_order": 2} if lab.order_service else {})}
    drive = drivers.locust(lab, "PT-07", weights=weights, phases=[(seconds, p.pt07_users)],
                           spawn_rate=p.pt07_users, think_seconds=p.pt07_think, mode="mixed")  # fmt: skip
    injector = Injector(lab, p.pt07_baseline_seconds, p.pt07_window_seconds)
    injector.start()
    try:
        record = measure(lab, "PT-07", "faults", {"users": p.pt07_users,
                         "window_s": p.pt07_window_seconds}, drive, seconds)  # fmt: skip
    finally:
        injector.cancel.set()
        injector.join(timeout=5)
    record["faults"] = injector.done
    drivers.attach_orders(lab, record)
    return [record]


def smoothed(values: list[float], width: int = 3) -> list[float]:
    """A trailing mean over ``width`` seconds: one slow second of a small closed loop is not an
    outage, and a recovery has to hold."""
    return [sum(values[max(0, i - width + 1) : i + 1]) / len(values[max(0, i - width + 1) : i + 1])
            for i in range(len(values))]  # fmt: skip


def fault_rows(step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per fault: client errors in its window, seconds to 90% of the baseline throughput and to a
    drained backlog, from the load's timeline (t since the load started) and the samples."""
    load = step.get("load", {})
    timeline = load.get("timeline", [])
    started = float(load.get("started_wall") or 0.0)
    window = float(step.get("params", {}).get("window_s") or 0.0)
    faults = step.get("faults") or []
    times = [float(e["t"]) for e in timeline]
    ok = smoothed([float(e["requests"] - e["failures"]) for e in timeline])
    short = [-v for v in ok]  # recovery_seconds looks for values at or under a threshold
    first = (float(faults[0]["wall"]) - started) if faults else max(times, default=0.0)
    baseline = stats.median(v for t, v in zip(times, ok, strict=True) if 1 <= t < first)
    shift = started - float(step.get("sampler_started_wall") or started)
    series = backlog_series(step)
    b_times = [t - shift for t, _, _ in series]
    b_total = [o + lag for _, o, lag in series]
    quiet = max((v for t, v in zip(b_times, b_total, strict=True) if t < first), default=0.0)
    rows = []
    for fault in faults:
        at = float(fault["wall"]) - started
        inside = [e for e in timeline if at <= float(e["t"]) < at + window]
        back = stats.recovery_seconds(times, short, at, -0.9 * baseline, hold=2) if baseline else None
        rows.append({
            "fault": fault["fault"],
            "outcome": fault["outcome"],
            "at_s": round(at, 1),
            "client_errors": sum(int(e["failures"]) for e in inside),
            "requests": sum(int(e["requests"]) for e in inside),
            "throughput_back_s": back,
            "backlog_drained_s": stats.recovery_seconds(b_times, b_total, at, max(quiet, 10.0)),
        })  # fmt: skip
    return rows


def analyse(steps: list[dict[str, Any]], ceil: Mapping[str, float | None], machine_cores: float) -> dict[str, Any]:
    if not steps:
        return {}
    s = steps[0]
    load = s.get("load", {})
    started = float(load.get("started_wall") or 0.0)
    return {
        "row": step_row(s, ceil, ["nginx-fixed"]),
        "faults": fault_rows(s),
        "timeline": load.get("timeline", []),
        "marks": [(float(f["wall"]) - started, f["fault"]) for f in s.get("faults") or []],
    }


def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], path: Path) -> Path:
    entry = summary.get("tests", {}).get("PT-07") or {}
    timeline = entry.get("timeline") or []
    if not timeline:
        raise plotting.NoData(entry.get("skipped") or "PT-07 did not run")
    t = [e["t"] for e in timeline]
    fig, ax = plt.subplots(figsize=(11, 4.8))
    ax.plot(t, [e["requests"] - e["failures"] for e in timeline], color="#2471a3", label="answered/s")
    ax.plot(t, [e["failures"] for e in timeline], color="#c0392b", label="failed/s")
    top = max((e["requests"] for e in timeline), default=1)
    for at, name in entry.get("marks") or []:
        ax.axvline(at, color="#7f8c8d", ls="--", lw=1)
        ax.text(at, top, f" {name}", rotation=90, va="top", fontsize=7, color="#34495e")
    ax.set_xlabel("seconds")
    ax.set_ylabel("requests per second")
    ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(CHART_TITLE)
    return plotting.save(fig, path)


def reading(summary: Mapping[str, Any]) -> str | None:
    rows = (summary.get("tests", {}).get("PT-07") or {}).get("faults") or []
    if not rows:
        return None
    errors = sum(r["client_errors"] for r in rows)
    slowest = max(rows, key=lambda r: r["throughput_back_s"] if r["throughput_back_s"] is not None else 1e9)
    return (f"{len(rows)} faults, {errors} failed requests in all; the slowest to heal was "
            f"'{slowest['fault']}' (throughput back in {fmt(slowest['throughput_back_s'], '.0f')} s).")  # fmt: skip


FAULT_COLUMNS = [("fault", "fault", ""), ("outcome", "what happened", ""), ("at_s", "at, s", ".0f"),
                 ("client_errors", "failed requests", "d"), ("requests", "requests in its window", "d"),
                 ("throughput_back_s", "throughput at 90% after, s", ".0f"),
                 ("backlog_drained_s", "backlog drained after, s", ".0f")]  # fmt: skip


def section(entry: Mapping[str, Any], charts: Mapping[str, Mapping[str, str]], shown: set[str]) -> list[str]:
    rows = [entry["row"]] if entry.get("row") else []
    parts = [table(rows, [*COMMON, *LOADGEN]), table(entry.get("faults") or [], FAULT_COLUMNS)]
    parts.append(image(charts[CHART], shown))
    return parts


MARKDOWN = [*COMMON, ("loadgen", "load gen", ""), ("loadgen_cores", "its cores", ".2f")]
TEST = PerformanceTest("PT-07", "Faults under load", run, analyse, {CHART: Chart(CHART_TITLE, draw, reading)}, section, MARKDOWN, needs_orders=True)
