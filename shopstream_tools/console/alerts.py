"""Alertmanager's notifications, received by the console's webhook and kept as a log of JSON lines.

Alertmanager (started by ``up``) routes every alert Prometheus fires to
``POST /api/alerts/notifications``; each notification is appended, as received, to
``<data>/logs/alert-notifications.log`` (``shopstream logs alert-notifications -f`` follows it). The
alerts view replays the log: the latest state of each alert (firing or resolved) and the
notifications themselves, newest first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import msgspec

from shopstream.config import Settings

# The log is read from its end: enough for thousands of notifications, bounded whatever its size.
TAIL_BYTES = 1 << 20


class ReceivedAlert(msgspec.Struct):
    """One alert of an Alertmanager webhook notification (its other fields are not kept)."""

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    starts_at: str = msgspec.field(default="", name="startsAt")
    ends_at: str = msgspec.field(default="", name="endsAt")
    fingerprint: str = ""


class Notification(msgspec.Struct):
    """Alertmanager's webhook payload (version 4), the fields the console shows."""

    status: Literal["firing", "resolved"]
    alerts: list[ReceivedAlert]
    receiver: str = ""
    received_at: str = ""


@dataclass
class AlertState:
    """An alert as the latest notification about it left it."""

    name: str
    status: str
    severity: str
    labels: dict[str, str]
    summary: str
    since: str
    ended: str
    notified: str
    notifications: int = 1
    key: str = field(default="", repr=False)


def log_path(settings: Settings) -> Path:
    return settings.data_path / "logs" / "alert-notifications.log"


def record(settings: Settings, notification: Notification) -> Notification:
    """Append the notification, stamped with the time it arrived, as one line of the log."""
    stamped = msgspec.structs.replace(
        notification, received_at=datetime.now(UTC).isoformat(timespec="milliseconds")
    )
    path = log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = msgspec.json.encode(stamped) + b"\n"
    # one write on an O_APPEND descriptor: a line is never interleaved with another
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return stamped


def notifications(settings: Settings) -> list[Notification]:
    """Every notification in the log's last ``TAIL_BYTES``, oldest first; unreadable lines skipped."""
    try:
        with open(log_path(settings), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            raw = f.read()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    if size > TAIL_BYTES:
        lines = lines[1:]  # the first one is cut
    found = []
    for line in lines:
        if not line.strip():
            continue
        try:
            found.append(msgspec.json.decode(line, type=Notification))
        except msgspec.DecodeError:
            continue
    return found


def _key(alert: ReceivedAlert) -> str:
    return alert.fingerprint or json.dumps(alert.labels, sort_keys=True)


# Labels every alert carries, or that the table shows in their own columns.
_SHOWN_APART = {"alertname", "severity", "platform"}


def states(found: list[Notification]) -> list[AlertState]:
    """Each alert's latest state, firing ones first, then the most recently notified."""
    latest: dict[str, AlertState] = {}
    for notification in found:
        for alert in notification.alerts:
            key = _key(alert)
            before = latest.get(key)
            latest[key] = AlertState(
                name=alert.labels.get("alertname", ""),
                status=alert.status,
                severity=alert.labels.get("severity", ""),
                labels={k: v for k, v in alert.labels.items() if k not in _SHOWN_APART},
                summary=alert.annotations.get("summary", ""),
                since=alert.starts_at,
                ended=alert.ends_at if alert.status == "resolved" else "",
                notified=notification.received_at,
                notifications=(before.notifications + 1) if before else 1,
                key=key,
            )
    ordered = sorted(latest.values(), key=lambda s: s.notified, reverse=True)
    return sorted(ordered, key=lambda s: s.status != "firing")


def as_json(state: AlertState) -> dict[str, Any]:
    return {
        "name": state.name,
        "status": state.status,
        "severity": state.severity,
        "labels": state.labels,
        "summary": state.summary,
        "since": state.since,
        "ended": state.ended,
        "notified": state.notified,
        "notifications": state.notifications,
    }
