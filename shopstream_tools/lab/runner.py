"""``shopstream lab run``: brings up the lab's platform, measures the ceilings, runs the tests,
audits after each, and writes raw results, charts and the HTML report under
``performance-tests/results/<run-id>/``.

Ctrl-C stops cleanly: the running load generator is told to stop and writes what it measured,
no further step starts, and the results, charts and report are written from what was measured.
"""


from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.bench import RESULTS_DIR, git_revision, machine_info, run_id
from shopstream_tools.lab import analysis, audit, ceilings, charts, report, testbed
from shopstream_tools.lab.context import CannotStart, Interrupted, Lab, say
from shopstream_tools.lab.profiles import Profile
from shopstream_tools.lab.results import keep_test, measured, versions, write_results
from shopstream_tools.lab.steps import wait_drained
from shopstream_tools.lab.tests import REGISTRY, TESTS
from shopstream_tools.lab.workload import prepare, restock_scarce
from shopstream_tools.runtime import profiles as platform_profiles

__all__ = ["TESTS", "CannotStart", "run"]


# --- ceilings --------------------------------------------------------------------------------------
def measure_ceilings(lab: Lab, round_number: int) -> None:
    p = lab.profile
    lab.log(f"ceilings, round {round_number}: nginx /fixed, pgbench (read mix, order path), Kafka producer")
    scripts = lab.pgbench_scripts
    reads = [(scripts["by_id"][0], 2 * len(scripts["search"]))] + [(s, 1) for s in scripts["search"]]
    # by id : search = 6 : 3, the Locust read mix (listing orders has no product-side SQL)
    plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("nginx-fixed", lambda: ceilings.nginx_fixed(lab.settings, p.ceiling_seconds, lab.raw, lab.stop)),
        ("pgbench-read-mix", lambda: ceilings.pgbench(lab.settings, "pgbench-read-mix", reads, p.ceiling_seconds, lab.pgbench_products, lab.raw, lab.stop)),
        ("pgbench-order-path", lambda: ceilings.pgbench(lab.settings, "pgbench-order-path", [(scripts["order_path"][0], 1)], p.ceiling_seconds, lab.pgbench_products, lab.raw, lab.stop, "orders/s")),
        ("kafka-producer", lambda: ceilings.kafka_producer(lab.settings, 6, p.kafka_records, lab.raw, lab.stop)),
    ]  # fmt: skip
    for name, run in plan:
        lab.check_stop()
        result = run() | {"round": round_number, "at": datetime.now(UTC).isoformat()}
        lab.ceilings.setdefault(name, []).append(result)
        lab.log(f"  {name:<20} {result['rate']:>10,.0f} {result['unit']}")



def run_test(lab: Lab, test: str) -> dict[str, Any]:
    assert lab.workload is not None
    spec = REGISTRY[test]
    result: dict[str, Any] = {"test": test, "title": spec.title, "steps": []}
    if spec.needs_orders and not lab.order_service:
        result["skipped"] = "the order service is not part of this build yet"
        lab.log(f"{test}: skipped ({result['skipped']})")
        return result
    lab.log(f"== {test} {spec.title}")
    products = lab.workload.lab_products
    restock_scarce(lab.settings, lab.workload)
    before = asyncio.run(audit.snapshot(lab.settings, products, lab.order_service))
    since = datetime.now(UTC)
    lab.steps = result["steps"]
    try:
        spec.run(lab)
    except Interrupted:
        result["interrupted"] = True
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        lab.log(f"  !! {test} failed: {result['error']}")
    if lab.stop.is_set():
        result["interrupted"] = True
        result["audit"] = {"passed": None, "skipped": "interrupted: in-flight work was not awaited"}
        return result
    drained = wait_drained(lab, lab.profile.drain_timeout)
    after = asyncio.run(audit.collect(lab.settings, products, since, lab.order_service))
    result["audit"] = audit.check(before, after) | {"drained_seconds": drained}
    verdict = "passed" if result["audit"]["passed"] else "FAILED"
    lab.log(f"  audit {verdict}: " + "; ".join(
        f"{name} {'ok' if c['passed'] else 'FAILED'}" for name, c in result["audit"]["checks"].items()
    ))  # fmt: skip
    return result


# --- entry point ---------------------------------------------------------------------------------
def run(
    base: Settings,
    tests: list[str],
    profile: Profile,
    data_dir: Path = testbed.LAB_DATA,
    port_offset: int = testbed.LAB_PORT_OFFSET,
    results_dir: Path = RESULTS_DIR,
    log: Callable[[str], object] = say,
    keep_up: bool = True,
    resume: Path | None = None,
    loadgen: str = "locust",
) -> Path:
    """Run the tests; return the run's folder (its report.html, summary.json, charts).

    ``resume``: an earlier run's folder; its tests already measured (their ``PT-0N.json``) are
    kept and not run again, its ceilings too, so a run of hours can be done in parts. Each test's
    result is written as soon as it is measured. ``loadgen``: what drives the closed-loop steps
    of the tests that have a JMeter plan (PT-01, PT-02, PT-04): locust or jmeter."""
    settings = testbed.lab_settings(base, data_dir, port_offset)
    problem = testbed.port_problem(settings)
    if problem:
        raise CannotStart(problem)
    machine = machine_info()
    rev, dirty = git_revision()
    started = datetime.now(UTC)
    run_dir = resume or results_dir / run_id(started, rev)
    run_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    lab = Lab(settings, profile, run_dir, stop, log, loadgen=loadgen)
    done = measured(run_dir, tests)
    lab.tests.update(done)
    if resume and (run_dir / "ceilings.json").exists():
        lab.ceilings = json.loads((run_dir / "ceilings.json").read_text())
    t0 = time.monotonic()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log("\n^C: stopping after the current load; keeping what was measured (^C again to abort)")

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        log(f"lab run {run_dir.name}: profile {profile.name}, tests {' '.join(tests)}, closed loops by {loadgen}")
        log(f"lab platform: {settings.data_path} (gateway :{settings.gateway_port}, PostgreSQL :{settings.postgres_port}, Kafka :{settings.kafka_port})")
        testbed.up(settings, log=lambda line: log("  " + line))
        if testbed.zipkin_running(settings):  # a run cut short in PT-06 left the services tracing
            settings = testbed.set_tracing(settings, None, log)
            testbed.stop_zipkin(settings)
        lab.settings = settings = testbed.set_partitions(settings, testbed.DEFAULT_PARTITIONS, log)
        # the platform profile's instances and consumer processes (one each, two with --platform ha)
        consumers = platform_profiles.CONSUMERS[platform_profiles.current(settings)]
        for service in testbed.services(settings):
            testbed.scale(settings, service, int(getattr(settings, f"{service}_instances", 1)))
            testbed.scale_consumers(settings, service, consumers)
        lab.order_service = "order" in testbed.services(settings)
        log(f"preparing the workload (catalog of {profile.catalog:,} products, lab products)")
        lab.workload = prepare(settings, lab.raw, profile.catalog, order_service=lab.order_service)
        # a fresh catalog's events (100k ProductCreated) must be through before anything is measured
        drained = wait_drained(lab, max(profile.drain_timeout, 300))
        log(f"nothing in flight ({drained}s)" if drained is not None else "still busy: measuring anyway")
        lab.pgbench_products = asyncio.run(ceilings.prepare_pgbench(settings))
        lab.pgbench_scripts = ceilings.write_pgbench_scripts(lab.raw / "pgbench")
        if not lab.ceilings:
            measure_ceilings(lab, 1)
        for test in tests:
            if stop.is_set():
                break
            if test in done:
                log(f"{test}: already measured in {run_dir.name}, kept")
                continue
            lab.tests[test] = run_test(lab, test)
            keep_test(lab, test)
        if profile.ceiling_rounds > 1 and not stop.is_set():
            measure_ceilings(lab, 2)
    except Interrupted:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        with_catch(lambda: asyncio.run(ceilings.drop_pgbench(settings)))
        environment = {
            "run_id": run_dir.name,
            "started_at": started.isoformat(),
            "seconds": round(time.monotonic() - t0, 1),
            "interrupted": stop.is_set(),
            "profile": asdict(profile),
            "tests": tests,
            "git_revision": rev,
            "git_dirty": dirty,
            "machine": machine,
            "load_average_after": [round(x, 2) for x in __import__("os").getloadavg()],
            "versions": with_catch(lambda: versions(settings)) or {},
            "settings": settings.as_env(),
            "order_service": lab.order_service,
            "loadgen": loadgen,
        }
        summary = analysis.summarize(lab.ceilings, lab.tests, machine.get("cores") or 2)
        write_results(lab, environment, summary)
        made = charts.draw_all(summary, lab.tests, run_dir / "charts")
        report.write(run_dir / "report.html", environment, lab.ceilings, summary, lab.tests, made)
        if not keep_up:
            testbed.down(settings)
    log(f"\nresults: {run_dir.relative_to(PROJECT_ROOT) if run_dir.is_relative_to(PROJECT_ROOT) else run_dir}")
    log(f"report:  {run_dir / 'report.html'}")
    return run_dir


def with_catch(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        print(f"  (ignored: {type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def open_report(path: Path) -> None:  # pragma: no cover - a convenience for people
    subprocess.run(["xdg-open", str(path)], check=False)
