"""The operator console on :8090: Kafka, consumer groups, dead letters, orders, alerts, live health.

For operators only: every view and API is behind the admin role (``access``; browsers sign in at
``/sign-in``, ``session``). Two writes: the dead-letter replay (``replay``), and Alertmanager's
webhook, which appends its notifications to the console's alert log (``alerts``). Each view is an
HTML page and the same data as JSON under ``/api``. Bad input (an unknown topic or partition, a
limit out of range, an order id that is not a UUID) is answered 4xx problem+json by the shared
HTTP plumbing. Run by ``up`` under granian:
``granian --interface asgi --factory shopstream_tools.console.app:create``.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Litestar, MediaType, Request, Router, get, post
from litestar.params import Parameter
from litestar.static_files import create_static_files_router

from shopstream import logging as shop_logging
from shopstream.config import Settings
from shopstream.consumer import DEAD_LETTER_TOPIC
from shopstream.http import Problem, create_app, field_error, strict_body
from shopstream_tools.console import (
    access,
    alerts,
    charts,
    health,
    kafka_pages,
    pages,
    replay,
    session,
)
from shopstream_tools.console.kafka_view import (
    Group,
    Message,
    Topic,
)
from shopstream_tools.console.sources import Console

Limit = Annotated[int, Parameter(ge=1, le=500, description="how many messages, 1..500")]
PartitionNo = Annotated[int, Parameter(ge=0, description="partition number")]
Window = Annotated[int, Parameter(ge=300, le=21600, description="seconds of history, 300..21600")]
STATIC = Path(__file__).parent / "static"


def _topic_json(t: Topic) -> dict[str, Any]:
    return {
        "name": t.name,
        "messages": t.messages,
        "partitions": [{**asdict(p), "messages": p.messages} for p in t.partitions],
    }


def _group_json(g: Group) -> dict[str, Any]:
    return {
        "id": g.id,
        "state": g.state,
        "members": g.members,
        "lag": g.lag,
        "partitions": [{**asdict(p), "lag": p.lag} for p in g.partitions],
    }


def _message_json(m: Message) -> dict[str, Any]:
    return asdict(m)


def _order_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise Problem(
            400, "Invalid order id", f"{raw!r} is not a UUID", [field_error("id", "must be a UUID")]
        ) from None


def routes(console: Console) -> list[Any]:
    @get("/", media_type=MediaType.HTML, include_in_schema=False)
    async def health_page() -> str:
        return pages.health(await health.pulse(console.settings))

    @get("/api/health", summary="Live health from Prometheus")
    async def health_api() -> dict[str, Any]:
        return asdict(await health.pulse(console.settings))

    async def cluster() -> tuple[str, list[Any], list[Topic]]:
        cluster_id, brokers = await console.run(console.kafka.brokers)
        return cluster_id, brokers, await console.run(console.kafka.topics)

    @get("/kafka", media_type=MediaType.HTML, include_in_schema=False)
    async def kafka_page() -> str:
        return kafka_pages.kafka(*(await cluster()))

    @get("/api/kafka", summary="Brokers and topics")
    async def kafka_api() -> dict[str, Any]:
        cluster_id, brokers, topics = await cluster()
        return {
            "cluster_id": cluster_id,
            "brokers": [asdict(b) for b in brokers],
            "topics": [_topic_json(t) for t in topics],
        }

    @get("/kafka/topics/{name:str}", media_type=MediaType.HTML, include_in_schema=False)
    async def topic_page(name: str) -> str:
        topic = await console.topic(name)
        return kafka_pages.topic(topic, await console.partition_sizes(name))

    @get("/api/kafka/topics/{name:str}", summary="A topic's partitions")
    async def topic_api(name: str) -> dict[str, Any]:
        topic = _topic_json(await console.topic(name))
        sizes = await console.partition_sizes(name)
        for p in topic["partitions"]:
            p["size_bytes"] = sizes.get(p["id"])
        return topic

    @get("/kafka/topics/{name:str}/messages", media_type=MediaType.HTML, include_in_schema=False)
    async def messages_page(name: str, partition: PartitionNo = 0, limit: Limit = 20) -> str:
        topic, found = await console.messages(name, partition, limit)
        return kafka_pages.messages(name, partition, limit, found, len(topic.partitions))

    @get("/api/kafka/topics/{name:str}/messages", summary="The latest messages of a partition")
    async def messages_api(
        name: str, partition: PartitionNo = 0, limit: Limit = 20
    ) -> list[dict[str, Any]]:
        _, found = await console.messages(name, partition, limit)
        return [_message_json(m) for m in found]

    @get("/kafka/groups", media_type=MediaType.HTML, include_in_schema=False)
    async def groups_page() -> str:
        return kafka_pages.groups(await console.run(console.kafka.groups))

    @get("/api/kafka/groups", summary="Consumer groups with lag per partition")
    async def groups_api() -> list[dict[str, Any]]:
        return [_group_json(g) for g in await console.run(console.kafka.groups)]

    @get("/kafka/dead-letter", media_type=MediaType.HTML, include_in_schema=False)
    async def dead_letter_page(
        limit: Limit = 50,
        replayed: Annotated[int | None, Parameter(ge=0, description="shown after a replay")] = None,
        note: Annotated[str, Parameter(max_length=16, description="why a replay was refused")] = "",
    ) -> str:
        topic = await console.topic(DEAD_LETTER_TOPIC)
        found = await console.run(console.kafka.dead_letters, limit)
        return kafka_pages.dead_letters(found, topic.messages, limit, replayed, note)

    @get("/api/kafka/dead-letter", summary="Dead-lettered messages with their reasons")
    async def dead_letter_api(limit: Limit = 50) -> list[dict[str, Any]]:
        return [_message_json(m) for m in await console.run(console.kafka.dead_letters, limit)]

    @get("/orders", media_type=MediaType.HTML, include_in_schema=False)
    async def orders_page(order_id: Annotated[str, Parameter(query="id")] = "") -> str:
        if not order_id:
            return pages.orders("", None, [], "", "")
        oid = _order_id(order_id)
        order, events, note = await console.order(oid)
        return pages.orders(oid, order, events, note, console.trace_link(oid))

    @get("/api/orders/{order_id:str}", summary="An order and its event stream")
    async def order_api(order_id: str) -> dict[str, Any]:
        oid = _order_id(order_id)
        order, events, note = await console.order(oid)
        return {"order": order, "events": events, "note": note, "trace": console.trace_link(oid)}

    @get("/alerts", media_type=MediaType.HTML, include_in_schema=False)
    async def alerts_page() -> str:
        found = await console.run(alerts.notifications, console.settings)
        return pages.alerts(alerts.states(found), found, console.settings.alertmanager_port)

    @get("/api/alerts", summary="Each alert's latest notified state, and the notifications")
    async def alerts_api(limit: Limit = 50) -> dict[str, Any]:
        found = await console.run(alerts.notifications, console.settings)
        return {
            "alerts": [alerts.as_json(s) for s in alerts.states(found)],
            "notifications": [msgspec.to_builtins(n) for n in reversed(found[-limit:])],
        }

    @post(
        "/api/alerts/notifications",
        status_code=200,
        opt={access.ALERTMANAGER: True},
        summary="Alertmanager's webhook: appends the notification to the alert log",
    )
    async def alert_webhook(request: Request[Any, Any, Any]) -> dict[str, Any]:
        notification = await strict_body(request, alerts.Notification)
        stamped = await console.run(alerts.record, console.settings, notification)
        return {"recorded": len(stamped.alerts), "received_at": stamped.received_at}

    @get("/dashboards", media_type=MediaType.HTML, include_in_schema=False)
    async def dashboards_page() -> str:
        return pages.dashboards_index(health.dashboards())

    @get("/dashboards/{uid:str}", media_type=MediaType.HTML, include_in_schema=False)
    async def dashboard_page(uid: str) -> str:
        board = next((b for b in health.dashboards() if b["uid"] == uid), None)
        if board is None:
            raise Problem(404, "Unknown dashboard", f"no dashboard {uid!r}", [field_error("uid", "no such dashboard")])
        return pages.dashboard(board, charts.boards()[uid])

    @get("/lab", media_type=MediaType.HTML, include_in_schema=False)
    async def lab_page() -> str:
        return pages.lab(charts.boards()["lab"], *(await console.lab_steps()))

    @get(
        "/api/charts/{board:str}/{panel:int}",
        summary="A chart's series over a window, with its unit and alert thresholds",
    )
    async def chart_api(board: str, panel: int, window: Window = 3600) -> dict[str, Any]:
        found = charts.chart(board, panel)
        if found is None:
            where = "board" if board not in charts.boards() else "panel"
            raise Problem(404, "Unknown chart", f"no chart {board}/{panel}", [field_error(where, "no such chart")])
        return await charts.series(console.settings, found, window)

    return [
        lab_page,
        chart_api,
        dashboards_page,
        dashboard_page,
        health_page,
        health_api,
        kafka_page,
        kafka_api,
        topic_page,
        topic_api,
        messages_page,
        messages_api,
        groups_page,
        groups_api,
        dead_letter_page,
        dead_letter_api,
        orders_page,
        order_api,
        alerts_page,
        alerts_api,
        alert_webhook,
        *replay.routes(console),
    ]


def create(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    shop_logging.configure("console", settings.log_level)
    console = Console(settings)
    gate = access.Gate(settings)

    async def ready() -> bool:
        return True

    # everything but the probes, /metrics, /docs and the vendored scripts is for operators
    operators = Router(
        "/",
        route_handlers=[*routes(console), *session.routes(gate)],
        guards=[access.make_guard(gate)],
        exception_handlers={access.SignInRequired: access.to_sign_in},
    )
    return create_app(
        "console",
        "shopstream operator console",
        "For operators (a bearer token with the admin role, or the session of /sign-in): views of"
        " Kafka, consumer groups, dead letters, orders, alerts and live health; dead-letter replay;"
        " Alertmanager's webhook.",
        [create_static_files_router("/static", [STATIC], include_in_schema=False), operators],
        ready,
    )
