"""The console's Kafka pages: the cluster, a topic, its messages, the consumer groups and the dead
letters (data from ``kafka_view``)."""

from __future__ import annotations

import time
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from shopstream_tools.console.kafka_view import Broker, Group, Message, Topic
from shopstream_tools.console.layout import Raw, link, page, pretty, table


def kafka(cluster_id: str, brokers: list[Broker], topics: list[Topic]) -> str:
    broker_rows = [[b.id, f"{b.host}:{b.port}", "yes" if b.controller else ""] for b in brokers]
    topic_rows = [
        [
            link(f"/kafka/topics/{quote(t.name)}", t.name),
            len(t.partitions),
            max((len(p.replicas) for p in t.partitions), default=0),
            t.messages,
            sum(p.high for p in t.partitions),
        ]
        for t in topics
        if not t.internal
    ]
    body = (
        f"<p>cluster <code>{escape(cluster_id)}</code></p><h2>Brokers</h2>"
        + table(["id", "address", "controller"], broker_rows, "brokers")
        + "<h2>Topics</h2>"
        + table(["topic", "partitions", "replication", "messages", "log-end offsets"], topic_rows, "topics")
    )
    return page("Kafka", "/kafka", body)


def topic(t: Topic, sizes: dict[int, float]) -> str:
    rows = [
        [
            p.id,
            p.leader,
            ", ".join(map(str, p.replicas)),
            ", ".join(map(str, p.isr)),
            p.low,
            p.high,
            p.messages,
            _size(sizes.get(p.id)),
            link(f"/kafka/topics/{quote(t.name)}/messages?partition={p.id}", "latest messages"),
        ]
        for p in t.partitions
    ]
    headers = ["partition", "leader", "replicas", "ISR", "log start", "log end", "messages", "size", ""]
    return page(f"Topic {t.name}", "/kafka", table(headers, rows, "partitions"))


def _size(value: float | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def _message_rows(messages: list[Message], with_reason: bool) -> list[list[Any]]:
    rows = []
    for m in messages:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(m.timestamp_ms / 1000))
        headers = {k: v for k, v in m.headers.items() if not (with_reason and k.startswith("dlq."))}
        row: list[Any] = [m.offset, when, m.key or ""]
        if with_reason:
            origin = (
                f"{m.headers.get('dlq.original_topic', '?')}/{m.headers.get('dlq.original_partition', '?')}"
                f"@{m.headers.get('dlq.original_offset', '?')}"
            )
            row += [
                Raw(f'<span class="bad reason">{escape(m.dlq_reason)}</span>'),
                origin,
                m.headers.get("dlq.consumer_group", ""),
                m.headers.get("dlq.attempts", ""),
            ]
        row += [pretty(headers) if headers else "", pretty(m.value)]
        rows.append(row)
    return rows


def messages(topic_name: str, partition: int, limit: int, found: list[Message], partitions: int) -> str:
    choose = " ".join(
        f'<a href="/kafka/topics/{quote(topic_name)}/messages?{urlencode({"partition": p, "limit": limit})}">{p}</a>'
        if p != partition
        else f"<b>{p}</b>"
        for p in range(partitions)
    )
    body = (
        f"<p>partition: {choose} · the latest {limit}, newest first</p>"
        + table(["offset", "time (UTC)", "key", "headers", "value"], _message_rows(found, False), "messages")
    )
    return page(f"{topic_name} / partition {partition}", "/kafka", body)


def groups(found: list[Group]) -> str:
    parts = []
    summary = [[g.id, g.state, g.members, g.lag] for g in found]
    parts.append(table(["group", "state", "members", "lag"], summary, "groups"))
    for g in found:
        rows = [
            [p.topic, p.partition, "-" if p.committed is None else p.committed, p.end, p.lag]
            for p in g.partitions
        ]
        parts.append(
            f'<h2 id="{escape(g.id)}">{escape(g.id)}</h2>'
            + table(["topic", "partition", "committed", "log end", "lag"], rows, f"group-{g.id}")
        )
    return page("Consumer groups", "/kafka/groups", "".join(parts))


REPLAY_NOTES = {
    "changed": "Not replayed: the dead-letter topic changed since the page was shown. Review the messages below again.",
    "running": "Not replayed: another replay is running. Reload in a moment.",
    "refused": "Not replayed: a message names no original topic, or Kafka did not acknowledge; see the console's log.",
}


def dead_letters(found: list[Message], total: int, limit: int, replayed: int | None, note: str) -> str:
    said = ""
    if replayed is not None:
        said = f"<p class=ok role=status>Replayed {replayed} message(s) to their original topics.</p>"
    elif note in REPLAY_NOTES:
        said = f"<p class=bad role=alert>{escape(REPLAY_NOTES[note])}</p>"
    replay = ""
    if total:
        # `expect`: the count reviewed here; the console refuses the replay if it changed since
        replay = (
            '<form method=post action="/kafka/dead-letter/replay" class=replay>'
            f'<input type=hidden name=expect value="{total}">'
            f"<button>Replay all {total} message(s) to their original topics</button> "
            "<span class=muted>after fixing the cause; the same as <code>shopstream dlq replay</code></span>"
            "</form>"
        )
    body = (
        said
        + f"<p>{total} message(s) waiting in the dead-letter topic; the newest {min(limit, total)} below.</p>"
        + replay
        + table(
            ["offset", "time (UTC)", "key", "reason", "from", "group", "attempts", "headers", "value"],
            _message_rows(found, True),
            "dead-letters",
        )
    )
    return page("Dead letters", "/kafka/dead-letter", body)
