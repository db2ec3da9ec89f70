"""Reading the test platform's Prometheus through its HTTP API, polling instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from shopstream.config import Settings

T = TypeVar("T")


def api(settings: Settings, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{settings.prometheus_port}/api/v1/{path}"
    response = httpx.get(url, params=params, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (path, params, body)
    return body["data"]


def query(settings: Settings, expr: str) -> list[dict[str, Any]]:
    data = api(settings, "query", query=expr)
    assert data["resultType"] == "vector", (expr, data["resultType"])
    return list(data["result"])


def targets(settings: Settings) -> list[dict[str, Any]]:
    return list(api(settings, "targets", state="active")["activeTargets"])


def poll(check: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
    """Call ``check`` until it returns something truthy; fail with ``what()`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout:.0f}s: {what()}")
        time.sleep(0.5)
