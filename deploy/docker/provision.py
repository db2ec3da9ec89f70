#!/opt/venv/bin/python
"""Create what schema migrations cannot create themselves, before ``shopstream migrate`` runs.

- per service (the arguments, default both): its PostgreSQL database, the owner role that owns it
  and runs its migrations, and the service's own login role with the password the container was
  given (``SHOPSTREAM_POSTGRES_USER``/``_PASSWORD``), so a rotated secret reaches the server on the
  next ``migrate`` (``shopstream_tools/runtime/database_roles.py``, the same code the local
  platform runs); all through the admin role (``SHOPSTREAM_POSTGRES_ADMIN_USER``/``_PASSWORD``:
  the compose server's superuser, RDS's master user);
- the Kafka topics with the configured partitions and replication (``kafka_broker.ensure_topics``,
  the same function the local platform uses).

Both are idempotent. The image's entrypoint runs this before every ``migrate``, for the image's own
service; every setting comes from ``Settings`` (``SHOPSTREAM_*``), as everywhere else. Retries
while PostgreSQL or Kafka are still starting, so a first start of a whole stack needs no ordering
beyond "start them".
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from shopstream.config import SERVICES, Settings
from shopstream_tools.runtime import database_roles
from shopstream_tools.runtime.kafka_broker import TopicPartitionsMismatch, ensure_topics

ATTEMPTS = 30
PAUSE_SECONDS = 2.0
T = TypeVar("T")

quote_ident = database_roles.quote_ident


async def ensure_databases(settings: Settings, services: tuple[str, ...]) -> list[str]:
    created: list[str] = []
    for service in services:
        role = settings.database_role(service)
        password = settings.postgres_password_of(role)
        if not password:
            raise SystemExit(f"provision: no password for {role}: set SHOPSTREAM_POSTGRES_PASSWORD")
        database = urlsplit(settings.database_url(service)).path.lstrip("/") or service
        if await database_roles.provision(
            settings.admin_database_url(service, "postgres"),
            database,
            settings.database_owner(service),
            role,
            password,
        ):
            created.append(database)
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


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    services = tuple(argv if argv is not None else sys.argv[1:]) or SERVICES
    unknown = set(services) - set(SERVICES)
    if unknown:
        print(f"provision: unknown services {sorted(unknown)}", file=sys.stderr)
        return 2
    if settings.postgres_user and len(services) > 1:
        # one login role given: it must never be granted a second service's database
        print("provision: SHOPSTREAM_POSTGRES_USER names one role: provision one service",
              file=sys.stderr)  # fmt: skip
        return 2
    created = retrying("postgresql", lambda: asyncio.run(ensure_databases(settings, services)))
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
