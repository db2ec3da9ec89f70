"""A request safe to repeat waits out a PostgreSQL failover (``shopstream.failover``); one that is
not, or one whose budget ran out, gets the 503; the marker header never reaches the client. And the
HA profile's database URLs name both nodes and ask for the one that takes writes."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from shopstream import failover
from shopstream.config import Settings
from shopstream_tools.runtime import profiles


class FlakyDatabase:
    """An app whose database is unreachable for the first ``outages`` requests."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.bodies: list[bytes] = []
        self.repeats: list[bool] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message["body"])
        self.repeats.append(failover.is_repeat(scope))
        scope["path_template"] = "/orders"
        if len(self.bodies) <= self.outages:
            headers = [(b"retry-after", b"2"), (failover.MARKER, b"1")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": b"unavailable"})
            return
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"accepted"})


def _run(app: FlakyDatabase, method: str, headers: list[tuple[bytes, bytes]], budget: float,
         path: str = "/orders", idempotent: tuple[str, ...] = ()) -> tuple[list[Any], dict[str, Any]]:  # fmt: skip
    sent: list[Any] = []
    parts = [{"type": "http.request", "body": b'{"lines":', "more_body": True},
             {"type": "http.request", "body": b"[]}", "more_body": False}]  # fmt: skip

    async def receive() -> Any:
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    wrapped = failover.middleware(budget, idempotent)(app)  # type: ignore[arg-type]
    asyncio.run(wrapped(scope, receive, send))  # type: ignore[arg-type]
    return sent, scope


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failover, "FIRST_PAUSE", 0.01)
    monkeypatch.setattr(failover, "LONGEST_PAUSE", 0.02)


def test_a_post_with_an_idempotency_key_is_repeated_until_the_database_is_back() -> None:
    app = FlakyDatabase(outages=3)
    sent, scope = _run(app, "POST", [(b"idempotency-key", b"k1")], budget=5)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [202]
    assert app.bodies == [b'{"lines":[]}'] * 4, "each attempt reads the whole body again"
    assert scope["path_template"] == "/orders", "routing's findings reach the metrics"
    assert app.repeats == [False, True, True, True], "a repeat knows its first attempt is over"


def test_reads_and_idempotent_paths_are_repeated_too() -> None:
    assert _run(FlakyDatabase(1), "GET", [], budget=5)[0][0]["status"] == 202
    sent, _ = _run(FlakyDatabase(1), "POST", [], 5, "/reservations/x/release", ("/reservations",))
    assert sent[0]["status"] == 202


def test_a_post_without_a_key_is_answered_503_at_once() -> None:
    app = FlakyDatabase(outages=1)
    sent, _ = _run(app, "POST", [], budget=5)
    assert sent[0]["status"] == 503
    assert len(app.bodies) == 1
    assert failover.MARKER not in dict(sent[0]["headers"])


def test_the_budget_bounds_the_wait_and_the_marker_never_leaves() -> None:
    app = FlakyDatabase(outages=1000)
    sent, _ = _run(app, "GET", [], budget=0.2)
    start = sent[0]
    assert start["status"] == 503
    assert failover.MARKER not in dict(start["headers"])
    assert dict(start["headers"])[b"retry-after"] == b"2"
    assert 2 <= len(app.bodies) < 40


def test_no_budget_no_repeat() -> None:
    app = FlakyDatabase(outages=1)
    sent, _ = _run(app, "GET", [], budget=0)
    assert sent[0]["status"] == 503
    assert failover.MARKER not in dict(sent[0]["headers"])
    assert len(app.bodies) == 1


def test_the_ha_profile_names_both_nodes_and_asks_for_the_primary() -> None:
    base = Settings(data_dir="/tmp/x", postgres_port=15432, postgres_admin_password="pw",
                    postgres_password="pw", postgres_user="shop")  # fmt: skip
    assert base.database_url("order") == "postgresql://shop:pw@127.0.0.1:15432/order"
    ha = dataclasses.replace(base, **profiles.PROFILES["ha"])
    assert ha.postgres_ports == [15432, 15433]
    assert ha.database_url("order") == (
        "postgresql://shop:pw@127.0.0.1:15432,127.0.0.1:15433/order?target_session_attrs=read-write"
    )
    assert ha.db_failover_seconds > 0 and base.db_failover_seconds == 0
