"""The platform's pulse, read from Prometheus' HTTP API (the recording rules in infra/prometheus)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from shopstream.config import PROJECT_ROOT, Settings

# What the health view shows, as (title, PromQL, unit, labels that name a row).
PANELS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("Requests per second", "service:http_requests:rate1m", "req/s", ("service",)),
    ("p99 latency", "service:http_request_duration_seconds:p99_1m", "s", ("service",)),
    ("5xx errors per second", "service:http_request_errors:rate1m", "err/s", ("service",)),
    ("Consumer lag", "group_topic:kafka_consumer_lag_messages:sum", "messages", ("group", "topic")),
    ("Outbox pending", "max by (service) (outbox_pending_events)", "rows", ("service",)),
    (
        "Outbox oldest pending",
        "max by (service) (outbox_oldest_pending_age_seconds)",
        "s",
        ("service",),
    ),
    ("Reservations held", "max(product_reservations_held)", "orders", ()),
    (
        "Oldest held reservation",
        "max(product_reservation_oldest_held_age_seconds)",
        "s",
        (),
    ),
    ("Dead-letter messages", 'topic:kafka_log_messages:sum{topic="dead-letter"}', "messages", ("topic",)),
    ("Targets down", "up == 0", "targets", ("job", "instance")),
    # supervisord's restarts of the service processes, and the crash loops it gave up on
    (
        "Restarts (last 15 min)",
        "sum by (program) (increase(shopstream_process_restarts_total[15m]))",
        "restarts",
        ("program",),
    ),
    ("Crash loops (given up)", "shopstream_process_fatal == 1", "processes", ("program",)),
]


@dataclass
class Row:
    labels: dict[str, str]
    value: float


@dataclass
class Panel:
    title: str
    expr: str
    unit: str
    keys: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)
    error: str = ""


@dataclass
class Pulse:
    reachable: bool
    panels: list[Panel]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def base_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.prometheus_port}"


async def query(client: httpx.AsyncClient, expr: str) -> list[Row]:
    response = await client.get("/api/v1/query", params={"query": expr})
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", f"HTTP {response.status_code}"))
    return [
        Row(dict(r["metric"]), float(r["value"][1]))
        for r in body["data"]["result"]
        if r["value"][1] not in ("NaN", "+Inf", "-Inf")
    ]


async def pulse(settings: Settings) -> Pulse:
    panels = [Panel(title, expr, unit, keys) for title, expr, unit, keys in PANELS]
    try:
        async with httpx.AsyncClient(base_url=base_url(settings), timeout=5) as client:
            for panel in panels:
                try:
                    panel.rows = sorted(
                        await query(client, panel.expr),
                        key=lambda r: tuple(r.labels.get(k, "") for k in panel.keys),
                    )
                except RuntimeError as exc:
                    panel.error = str(exc)
            alerts = (await client.get("/api/v1/alerts")).json()["data"]["alerts"]
    except httpx.HTTPError as exc:
        return Pulse(False, panels, error=f"Prometheus at {base_url(settings)}: {exc}")
    firing = [a for a in alerts if a.get("state") == "firing"]
    if settings.alertmanager_port:
        await _notification_states(settings, firing)
    return Pulse(True, panels, firing)


# Labels Prometheus adds to every alert it sends (its external labels), absent from its own API.
EXTERNAL_LABELS = frozenset({"platform"})


def _labels_key(labels: dict[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset((k, v) for k, v in labels.items() if k not in EXTERNAL_LABELS)


async def _notification_states(settings: Settings, firing: list[dict[str, Any]]) -> None:
    """Mark each firing alert with what Alertmanager does with it: active (routed to the receiver),
    silenced, inhibited, or not received yet; a silenced alert still fires in Prometheus."""
    url = f"http://127.0.0.1:{settings.alertmanager_port}/api/v2/alerts"
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            held = (await client.get(url)).json()
    except (httpx.HTTPError, ValueError):
        for alert in firing:
            alert["alertmanager"] = "unreachable"
        return
    states = {}
    for alert in held:
        status = alert.get("status", {})
        if status.get("silencedBy"):
            states[_labels_key(alert["labels"])] = "silenced"
        elif status.get("inhibitedBy"):
            states[_labels_key(alert["labels"])] = "inhibited"
        else:
            states[_labels_key(alert["labels"])] = "active"
    for alert in firing:
        alert["alertmanager"] = states.get(_labels_key(alert["labels"]), "not received yet")


DASHBOARDS = PROJECT_ROOT / "deploy" / "grafana" / "dashboards"


def dashboards() -> list[dict[str, Any]]:
    """The provisioned Grafana dashboards, as the JSON Grafana reads."""
    return [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
