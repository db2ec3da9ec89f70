"""JMeter (the seed's load tool, closed loop) as a lab driver beside Locust: a test plan of
``performance-tests/jmeter`` run non-GUI (``-n``) as a child process with its own CPU measured, on
the lab's data (``lab_data``: the same Zipf sample of the catalog, search windows, order products
and signed-in customers Locust's users draw from), its results file (JTL, CSV) read back into the
lab's step fields: requests, failures, rate, HDR percentiles, a per-second timeline.

JMeter itself is the one ``scripts/bootstrap.sh`` installs from Maven Central with the
jmeter-maven-plugin's ``configure`` goal (``performance-tests/jmeter/pom.xml``: JMeter 5.6.3 and
its libraries under ``target/``, recorded in ``target/config.json``); the lab starts its jar with
``java -jar`` directly, without Maven's start-up on every step.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT
from shopstream_tools.lab.hdr import Latencies
from shopstream_tools.lab.load import Child, Progress, loadgen_record
from shopstream_tools.lab.step_result import timeline, totals
from shopstream_tools.lab.workload import Workload

JMETER_DIR = PROJECT_ROOT / "performance-tests" / "jmeter"
CONFIG = JMETER_DIR / "target" / "config.json"
# the lab's task -> the plan that runs that mix (PT-03's plan has another mix than the lab's PT-03)
PLANS = {"PT-01": "PT-01.jmx", "PT-02": "PT-02.jmx", "PT-04": "PT-04.jmx"}
# A JMeter process using this share of the machine's cores competes with what it measures.
SATURATED_SHARE = 0.85
SAMPLE = 20_000  # Zipf draws of the catalog written for JMeter's users
# JMeter's thread group counts its duration from the first user's start, which comes after the
# JVM's and the plan's start-up (the Groovy of the first request's post-processor is compiled
# then); and for about its first 10 s the JVM is still compiling its hot paths (measured: the
# rate 20-25 % lower and p99 3-10x higher than in the rest of a 30 s step at 100 users). A step
# runs that much longer and its figures count only the requests after the warm-up, over their own
# span, so they describe the platform, not JMeter's start.
LEAD_SECONDS = 3
WARMUP_SECONDS = 10.0


class NotInstalled(RuntimeError):
    pass


def runtime_jar(config: Path = CONFIG) -> Path:
    """The JMeter jar the plugin's ``configure`` goal laid out (its folder name is random)."""
    if not config.exists():
        raise NotInstalled(f"{config} is missing: run scripts/bootstrap.sh (it installs JMeter)")
    entry = json.loads(config.read_text())["configurations"][0]
    jar = Path(entry["jmeterDirectoryPath"]) / "bin" / entry["runtimeJarName"]
    if not jar.exists():
        raise NotInstalled(f"{jar} is missing: run scripts/bootstrap.sh (it installs JMeter)")
    return jar


def write_lab_data(workload: Workload, folder: Path, rng: random.Random | None = None) -> Path:
    """The lab's data as the plans read it (one item a line): products (a Zipf sample, s=1, rank
    = the listed order, as the locustfile draws), searches (query strings from the price windows
    of the workload's file, as the locustfile builds them), order_products, customers ("id,token")."""
    rng = rng or random.Random()
    windows = json.loads(workload.path.read_text())["windows"]
    folder.mkdir(parents=True, exist_ok=True)
    weights = list(itertools.accumulate(1.0 / rank for rank in range(1, len(workload.products) + 1)))
    products = rng.choices(workload.products, cum_weights=weights, k=SAMPLE)
    searches = []
    for _ in range(2_000):
        w = rng.choice(windows)
        low = rng.randint(w[1], w[2])
        high = low + rng.randint(w[3], w[4])
        searches.append(f"category={w[0]}&min_price={low}&max_price={high}&in_stock=true&sort=price_asc&limit=20")
    customers = [f"{c},{workload.tokens[c]}" for c in workload.customers]
    for name, lines in (("products", products), ("searches", searches),
                        ("order_products", workload.order_products), ("customers", customers)):  # fmt: skip
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder


@dataclass(frozen=True)
class JMeterPlan:
    plan: str  # PT-01.jmx ...
    host: str
    port: int
    users: int
    seconds: float
    think_seconds: float = 0.0
    spawn_rate: float = 100.0
    mode: str = "async"
    lab_data: Path | None = None
    warmup_seconds: float = WARMUP_SECONDS

    def argv(self, jar: Path, results: Path, log: Path) -> list[str]:
        rampup = max(1, round(self.users / self.spawn_rate)) if self.spawn_rate > 0 else 1
        props = {"host": self.host, "port": self.port, "users": self.users, "rampup": rampup,
                 "duration": max(1, round(self.seconds + self.warmup_seconds)) + LEAD_SECONDS, "think": round(self.think_seconds * 1000),
                 "mode": self.mode, "lab_data": self.lab_data or "",
                 # the columns summarize_jtl reads, as CSV
                 "jmeter.save.saveservice.output_format": "csv"}  # fmt: skip
        return ["java", "-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true", "-jar", str(jar),
                "-n", "-t", str(JMETER_DIR / self.plan), "-l", str(results), "-j", str(log),
                *(f"-J{k}={v}" for k, v in props.items())]  # fmt: skip


def summarize_jtl(rows: Iterable[dict[str, str]], seconds: float) -> dict[str, Any]:
    """JMeter's CSV results as a lab step's load result: the discovery request left out, a sample
    that failed its assertions (an order answered 402 or 409 passes them) is a failure."""
    latencies = Latencies()
    statuses: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    per_second: dict[int, list[float]] = {}
    fails: Counter[int] = Counter()
    first: int | None = None
    count = failures = 0
    for row in rows:
        if row["label"].startswith("discover"):
            continue
        stamp, elapsed = int(row["timeStamp"]), float(row["elapsed"])
        first = stamp if first is None else min(first, stamp)
        bad = row["success"] != "true"
        count += 1
        failures += bad
        latencies.record_ms(elapsed)
        statuses[row["responseCode"]] += 1
        labels[row["label"]] += 1
        second = stamp // 1000
        per_second.setdefault(second, []).append(elapsed)
        fails[second] += bad
    return {
        **totals("jmeter", seconds, count, failures, latencies),
        "statuses": dict(statuses),
        "requests_by_name": dict(labels),
        "hdr": latencies.encode(),
        "timeline": timeline(per_second, fails, first // 1000) if first is not None else [],
    }


def after_warmup(rows: list[dict[str, str]], warmup_seconds: float) -> list[dict[str, str]]:
    """The load's requests from ``warmup_seconds`` after its first one on (discovery left out)."""
    load = [r for r in rows if not r["label"].startswith("discover")]
    if not load:
        return []
    start = min(int(r["timeStamp"]) for r in load) + warmup_seconds * 1000
    return [r for r in load if int(r["timeStamp"]) >= start]


def read_jtl(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def run_jmeter(
    plan: JMeterPlan,
    workdir: Path,
    name: str,
    stop: threading.Event,
    on_start: Callable[[int], None],
    progress: Progress,
) -> dict[str, Any]:
    jar = runtime_jar()
    results = workdir / f"{name}.jtl"
    results.unlink(missing_ok=True)  # JMeter appends to an existing file
    child = Child(plan.argv(jar, results, workdir / f"{name}.jmeter.log"), workdir / f"{name}.jmeter.out", {}, signal.SIGTERM)
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= 2.0:
            last[0] = elapsed
            progress({"elapsed": elapsed, "users": plan.users})

    deadline = plan.seconds + plan.warmup_seconds + LEAD_SECONDS + 60  # and the last answers
    done = child.run(stop, on_start, tick, deadline=deadline)
    rows = after_warmup(read_jtl(results), plan.warmup_seconds)
    stamps = [int(r["timeStamp"]) for r in rows]
    span = (max(stamps) - min(stamps)) / 1000 if len(stamps) > 1 else plan.seconds
    summary = summarize_jtl(rows, max(span, 1e-3) if len(stamps) > 1 else plan.seconds)
    summary["warmup_seconds"] = plan.warmup_seconds
    cores = os.cpu_count() or 1
    busy = done.cores >= SATURATED_SHARE * cores
    why = f"JMeter used {done.cores:.2f} of the machine's {cores} cores" if busy else ""
    if done.exit_code not in (0, -signal.SIGTERM, 143) and not rows:
        raise RuntimeError(f"JMeter exited {done.exit_code}: see {workdir / f'{name}.jmeter.out'}")
    return summary | {"loadgen": loadgen_record("jmeter", done, busy, why)}
