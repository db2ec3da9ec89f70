"""What PostgreSQL wrote during a perf step, by relation and record type (``pg_waldump``).

``pg_stat_wal`` gives the totals per operation; this says where they come from: each WAL record
names the relation it changed (heap or index, by file node), which ``pg_class`` turns into a
table or index name of the service's database. ``--profile`` writes it as ``wal.md`` beside the
flame graphs: the table that showed the outbox's mark-published update was half of an order's
records.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shopstream.config import SERVICES, Settings

_RECORD = re.compile(r"rmgr: (\S+)\s+len \(rec/tot\):\s*\d+/\s*(\d+).*?desc: (\S+)")
_RELATION = re.compile(r"rel \d+/\d+/(\d+)")


@dataclass
class WalByRelation:
    records: Counter[str] = field(default_factory=Counter)
    bytes: Counter[str] = field(default_factory=Counter)
    full_pages: Counter[str] = field(default_factory=Counter)
    kinds: Counter[tuple[str, str]] = field(default_factory=Counter)


def tally(lines: Iterable[str], names: Mapping[str, str]) -> WalByRelation:
    """``pg_waldump`` output lines, counted by the relation each record changed (``-`` for
    records of no relation: commits, running transactions)."""
    out = WalByRelation()
    for line in lines:
        record = _RECORD.search(line)
        if record is None:
            continue
        manager, size, desc = record.group(1), int(record.group(2)), record.group(3)
        node = _RELATION.search(line)
        relation = names.get(node.group(1), node.group(1)) if node else "-"
        out.records[relation] += 1
        out.bytes[relation] += size
        out.kinds[(relation, f"{manager}/{desc}")] += 1
        if "FPW" in line:
            out.full_pages[relation] += 1
    return out


def table(wal: WalByRelation, operations: int, top: int = 30) -> str:
    per = max(operations, 1)
    lines = ["| relation | records per op | bytes per op | full pages per op | records, by kind |",
             "|---|---:|---:|---:|---|"]  # fmt: skip
    for relation, n in wal.records.most_common(top):
        kinds = ", ".join(
            f"{kind} {count / per:.2f}"
            for (rel, kind), count in wal.kinds.most_common()
            if rel == relation
        )
        lines.append(f"| `{relation}` | {n / per:.2f} | {wal.bytes[relation] / per:.0f} |"
                     f" {wal.full_pages[relation] / per:.2f} | {kinds} |")  # fmt: skip
    total = sum(wal.records.values())
    lines.append(f"| **total** | **{total / per:.2f}** | **{sum(wal.bytes.values()) / per:.0f}** |"
                 f" {sum(wal.full_pages.values()) / per:.2f} | |")  # fmt: skip
    return "\n".join(lines) + "\n"


def insert_position(settings: Settings) -> str:
    return asyncio.run(_fetchval(settings, "postgres", "SELECT pg_current_wal_insert_lsn()::text"))


def relation_names(settings: Settings) -> dict[str, str]:
    """File node -> ``database.relation`` for every service database."""
    names: dict[str, str] = {}
    for service in SERVICES:
        rows = asyncio.run(_fetch(settings, service,
                                  "SELECT pg_relation_filenode(oid)::text AS node, relname FROM pg_class"
                                  " WHERE pg_relation_filenode(oid) IS NOT NULL"))  # fmt: skip
        names.update({r["node"]: f"{service}.{r['relname']}" for r in rows})
    return names


def dump(settings: Settings, start: str, end: str) -> list[str]:
    from shopstream_tools.runtime import postgres

    wal_dir = postgres.cluster_dir(settings) / "pg_wal"
    done = subprocess.run(
        [str(postgres.bin_dir() / "pg_waldump"), "-p", str(wal_dir), "-s", start, "-e", end],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.stdout.splitlines()


async def _fetch(settings: Settings, service: str, sql: str) -> list[dict[str, str]]:
    import asyncpg

    conn = await asyncpg.connect(settings.admin_database_url(service))
    try:
        return [dict(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


async def _fetchval(settings: Settings, database: str, sql: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(settings.admin_database_url(database=database))
    try:
        return str(await conn.fetchval(sql))
    finally:
        await conn.close()


def write(settings: Settings, start: str, operations: int, to: Path) -> None:
    """The WAL since ``start`` by relation, per operation, as a Markdown table in ``to``."""
    end = insert_position(settings)
    wal = tally(dump(settings, start, end), relation_names(settings))
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_text(f"# PostgreSQL WAL by relation, per operation ({operations} operations,"
                  f" {start} to {end})\n\n" + table(wal, operations))  # fmt: skip
