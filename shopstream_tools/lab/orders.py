"""The orders a step placed, read back from the order service's projection once they finished:
outcomes, end-to-end latency (accepted -> terminal) and its per-stage breakdown, exactly, from
each order's own stage timestamps (the same ones GET /orders/{id} shows)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from shopstream.config import Settings
from shopstream_tools.lab.hdr import Latencies

# stage -> (from, to): each a timestamp key, or "published" (the relay's produce time)
STAGES = {
    "publish": ("accepted", "published"),
    "reserve": ("published", "stock_reserved"),
    "pay": ("stock_reserved", "payment_authorized"),
    "confirm": ("payment_authorized", "confirmed"),
}
TERMINAL_KEYS = ("confirmed", "cancelled", "rejected")


def _at(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def breakdown(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """From rows of (mode, outcome, timestamps: {stage: iso time}, published_at): outcomes,
    end-to-end latency and each stage's latency, as HDR summaries in ms."""
    e2e = Latencies()
    confirmed = Latencies()
    stages = {name: Latencies() for name in STAGES}
    outcomes: dict[str, int] = {}
    count = 0
    for row in rows:
        count += 1
        outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
        stamps = {k: _at(v) for k, v in (row["timestamps"] or {}).items()}
        stamps["published"] = _at(row.get("published_at"))
        accepted = stamps.get("accepted")
        if accepted is None:
            continue
        ends = [at for k in TERMINAL_KEYS if (at := stamps.get(k)) is not None]
        if ends:
            e2e.record_ms(max((min(ends) - accepted).total_seconds() * 1000, 0.001))
        done = stamps.get("confirmed")
        if done is not None:
            confirmed.record_ms(max((done - accepted).total_seconds() * 1000, 0.001))
        for name, (start, end) in STAGES.items():
            a, b = stamps.get(start), stamps.get(end)
            if start == "published" and a is None:
                a = accepted  # sync orders are not published before they are reserved
            if a is not None and b is not None:
                stages[name].record_ms(max((b - a).total_seconds() * 1000, 0.001))
    return {
        "orders": count,
        "outcomes": outcomes,
        "end_to_end_ms": e2e.summary(),
        "accepted_to_confirmed_ms": confirmed.summary(),
        "accepted_to_confirmed_spectrum_ms": confirmed.spectrum(),
        "stages_ms": {name: lat.summary() for name, lat in stages.items()},
    }


async def fetch(settings: Settings, since: datetime, until: datetime) -> list[dict[str, Any]]:
    import json

    import asyncpg

    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        has_publications = await conn.fetchval("SELECT to_regclass('order_publications') IS NOT NULL")
        join = (
            " LEFT JOIN order_publications p ON p.order_id = o.id" if has_publications else ""
        )
        published = "p.published_at" if has_publications else "NULL::timestamptz"
        rows = await conn.fetch(
            f"SELECT o.mode, o.outcome, o.timestamps::text AS ts, {published} AS published_at"
            f" FROM orders o{join} WHERE o.created_at >= $1 AND o.created_at < $2",
            since,
            until,
        )
    finally:
        await conn.close()
    return [
        {
            "mode": r["mode"],
            "outcome": r["outcome"],
            "timestamps": json.loads(r["ts"]) if r["ts"] else {},
            "published_at": r["published_at"],
        }
        for r in rows
    ]


async def completed_per_second(
    settings: Settings, since: datetime
) -> tuple[int, float | None]:
    """Orders accepted since `since` and the seconds from `since` until the last one finished."""
    import asyncpg

    conn = await asyncpg.connect(settings.database_url("order"))
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM max(updated_at) - $1) AS span"
            " FROM orders WHERE created_at >= $1",
            since,
        )
    finally:
        await conn.close()
    if row is None:
        return 0, None
    span = row["span"]
    return int(row["n"]), (float(span) if span is not None else None)
