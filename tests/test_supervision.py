"""The platform heals by itself: supervisord restarts what dies, gives up on crash loops, and
leaves no process behind when it stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from services.order.tests.integration.helpers import eventually
from shopstream.config import Settings
from shopstream_tools.runtime import platform as runtime
from shopstream_tools.runtime import processes, supervision, topology


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    eventually(check, what, timeout, pause=0.2)


@pytest.mark.integration
def test_killed_instance_is_replaced_and_its_worker_dies_with_it(platform) -> None:
    settings = platform.settings
    name = topology.instance_name("product", 2)
    port = settings.service_port("product", 2)
    main = processes.read_pid(settings, name)
    assert main is not None
    workers = _group_members(main)
    assert len(workers) >= 2, "granian's main process and its worker, in one process group"
    os.kill(main, signal.SIGKILL)
    _wait(lambda: not any(processes.alive(p) for p in workers), 10, "the old worker still runs")
    _wait(
        lambda: (
            processes.read_pid(settings, name) not in (None, main)
            and processes.http_ok(f"http://127.0.0.1:{port}/health/ready")
        ),
        60,
        f"{name} was not restarted",
    )
    rows = {r.name: r for r in runtime.status(settings)}
    assert rows[name].restarts >= 1
    assert rows[name].health == "ready"
    metrics = httpx.get(f"http://127.0.0.1:{supervision.metrics_port(settings)}/metrics").text
    assert f'shopstream_process_restarts_total{{program="{name}"}}' in metrics


@pytest.mark.integration
def test_killed_relay_comes_back(platform) -> None:
    settings = platform.settings
    before = processes.read_pid(settings, "product-relay")
    assert before is not None
    os.kill(before, signal.SIGKILL)
    url = f"http://127.0.0.1:{topology.relay_metrics_port(settings, 'product')}/metrics"
    _wait(
        lambda: (
            processes.read_pid(settings, "product-relay") not in (None, before)
            and processes.http_ok(url)
        ),
        60,
        "product-relay was not restarted",
    )


def _private(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path), gateway_port=_free_port() + 2)


def test_shutdown_leaves_no_process_of_any_group(tmp_path: Path) -> None:
    settings = _private(tmp_path)
    # a program with a child of its own, as granian has: both must go
    argv = ["/bin/sh", "-c", "'sleep 300 & sleep 300'"]
    try:
        pid = supervision.add(settings, "forker", argv)
        _wait(lambda: len(_group_members(pid)) >= 3, 10, "the program did not start its child")
        members = _group_members(pid)
    finally:
        supervision.shutdown(settings)
    _wait(lambda: not _group_members(pid), 10, f"left running: {_group_members(pid)}")
    assert not any(processes.alive(p) for p in members)
    assert not supervision.running(settings)


def test_crash_loop_is_given_up_and_reported(tmp_path: Path) -> None:
    settings = _private(tmp_path)
    try:
        argv = [sys.executable, "-c", "'raise SystemExit(3)'"]
        supervision.add(settings, "crasher", argv, retries=2)
        _wait(
            lambda: supervision.states(settings)["crasher"].state == "FATAL",
            20,
            "supervisord kept retrying a crash loop",
        )
        # the event listener hears of it a moment after supervisord's own state changes
        _wait(
            lambda: (
                json.loads(supervision.restarts_file(settings).read_text())["fatal"] == ["crasher"]
            ),
            5,
            "the crash loop is not reported",
        )
        metrics = httpx.get(f"http://127.0.0.1:{supervision.metrics_port(settings)}/metrics").text
        assert 'shopstream_process_fatal{program="crasher"} 1.0' in metrics
    finally:
        supervision.shutdown(settings)
