#!/opt/venv/bin/python
"""Create what schema migrations cannot create themselves, before ``shopstream migrate`` runs.

- one PostgreSQL database per service (``product``, ``order``), created through the server's
  ``postgres`` maintenance database with the services' own credentials;
- the Kafka topics with the configured partitions and replication (``kafka_broker.ensure_topics``,
  the same function the local platform uses).

Both are idempotent. The image's entrypoint runs this before every ``migrate``; every setting comes
from ``Settings`` (``SHOPSTREAM_*``), as everywhere else. Retries while PostgreSQL or Kafka are
still starting, so a first start of a whole stack needs no ordering beyond "start them".
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shopstream.config import SERVICES, Settings
from shopstream_tools.runtime.kafka_broker import TopicPartitionsMismatch, ensure_topics

ATTEMPTS = 30
PAUSE_SECONDS = 2.0
T = TypeVar("T")


def maintenance_url(database_url: str) -> str:
    """The same server and credentials, database ``postgres``."""
    parts = urlsplit(database_url)
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, parts.fragment))


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_databases(settings: Settings) -> list[str]:
    created: list[str] = []
    for service in SERVICES:
        url = settings.database_url(service)
        database = urlsplit(url).path.lstrip("/") or service
        conn = await asyncpg.connect(maintenance_url(url))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                try:
                    await conn.execute(f"CREATE DATABASE {quote_ident(database)}")
                    created.append(database)
                except asyncpg.DuplicateDatabaseError:
                    pass  # another starter created it meanwhile
        finally:
            await conn.close()
    return created


def retrying(what: str, action: Callable[[], T]) -> T:
    """Run action until it succeeds; any failure counts as "still starting" until the last try."""
    for attempt in range(1, ATTEMPTS):
        try:
            return action()
        except TopicPartitionsMismatch:
            raise  # a decision for the operator, not a broker still starting
        except Exception as exc:
            print(f"provision: {what} not ready ({exc}); retry {attempt}", file=sys.stderr)
            time.sleep(PAUSE_SECONDS)
    return action()


def main() -> int:
    settings = Settings.from_env()
    created = retrying("postgresql", lambda: asyncio.run(ensure_databases(settings)))
    print(f"provision: databases ready ({', '.join(created) or 'none created'})")
    try:
        topics = retrying("kafka", lambda: ensure_topics(settings))
    except TopicPartitionsMismatch as exc:
        print(f"provision: {exc}", file=sys.stderr)
        return 2
    print(f"provision: topics ready ({', '.join(f'{t}={n}' for t, n in topics.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
