"""PostgreSQL access: connection pools and versioned schema migrations.

Migrations are plain SQL files named ``NNNN_description.sql``. The shared ones (outbox, processed
events) apply to every service database first, then the service's own. Each file runs once, in its
own transaction, under an advisory lock so that concurrent starters cannot race.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import partial
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shopstream.config import PROJECT_ROOT, Settings

SHARED_MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x5E0A57

# What a unit of work hands around: a plain connection or one borrowed from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy


def service_migrations(service: str) -> Path:
    return PROJECT_ROOT / "services" / service / "migrations"


def migration_files(service: str) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for scope, folder in (("shared", SHARED_MIGRATIONS), (service, service_migrations(service))):
        for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
            found.append((f"{scope}/{path.stem}", path))
    return found


async def migrate(database_url: str, service: str, owner: str = "") -> list[str]:
    """Apply pending migrations; return the versions applied now. With ``owner``, they run as that
    role (``SET ROLE``): it owns what they create, not the login role of ``database_url`` (the
    admin) and never the service's runtime role, which may not create anything."""
    conn = await asyncpg.connect(database_url)
    applied_now: list[str] = []
    try:
        if owner:
            await conn.execute("SET ROLE " + '"' + owner.replace('"', '""') + '"')
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, path in migration_files(service):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        await conn.close()
    return applied_now


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Pool connections never change session state (no SET, LISTEN or session advisory locks:
    those run on dedicated connections), so asyncpg's default reset query, one more round trip
    per request (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), is skipped.
    asyncpg still rolls back a transaction left open."""


async def create_pool(
    settings: Settings, service: str, purpose: str = "http", size: int | None = None
) -> asyncpg.Pool:
    """``purpose`` names the process in ``pg_stat_activity`` (``product-http``, ``order-consume``),
    so an operator sees who holds each backend. Every backend costs PostgreSQL memory (~10 MB of its
    own plus the shared buffers it touches), so a pool is as large as its process's concurrency:
    ``db_pool_size`` for an HTTP instance, ``worker_db_pool_size`` for a consumer."""
    max_size = size or settings.db_pool_size
    # the password is read on every new connection, not once: a rotated one (`shopstream
    # rotate-db-passwords`) is used without a restart; an explicit URL carries its own
    password = (
        None
        if getattr(settings, f"{service}_database_url")
        else partial(settings.postgres_password_of, settings.database_role(service))
    )
    pool = await asyncpg.create_pool(
        settings.database_url(service),
        password=password,
        reset=_keep_session,
        min_size=min(2, max_size),
        max_size=max_size,
        command_timeout=30,
        timeout=CONNECT_TIMEOUT_SECONDS,
        server_settings={"application_name": f"{service}-{purpose}"},
    )
    assert pool is not None
    return pool


CONNECT_TIMEOUT_SECONDS = (
    3.0  # a PostgreSQL that does not answer: fail the request, do not pile it up
)
READY_TIMEOUT_SECONDS = 2.0


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means PostgreSQL cannot be reached right now (down, restarting, shutting
    down, not answering) rather than a fault of the request or the code: answered with 503."""
    return isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError  # the connection went away under us
        | asyncpg.exceptions.PostgresConnectionError  # SQLSTATE class 08
        | asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    ) or (
        # A pooled connection the server dropped in the middle of an operation stays stuck in it
        # ("cannot switch to state 12; another operation (2) is in progress"): seen as 500s when
        # the lab killed PostgreSQL (PT-07), until the pool let the connection go.
        isinstance(exc, asyncpg.exceptions.InternalClientError)
        and str(exc).startswith("cannot switch to state")
    )


def rolled_back(exc: BaseException) -> bool:
    """Whether PostgreSQL rolled the transaction back to break a deadlock or a serialization
    conflict (SQLSTATE class 40): nothing of it stayed, running it again is the cure. Seen as 500s
    on reservations in the burst that follows a failover (test_ha_postgres)."""
    return isinstance(exc, asyncpg.exceptions.TransactionRollbackError)


async def reachable(pool: asyncpg.Pool | None) -> bool:
    """The readiness half every service shares: its pool answers a query, within 2 s."""
    if pool is None:
        return False
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            return await pool.fetchval("SELECT 1") == 1
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def lead(
    conn: asyncpg.Connection,
    lock: int,
    stopping: asyncio.Event,
    retry_seconds: float,
    standing_by: Callable[[], object] = lambda: None,
) -> bool:
    """Wait until ``conn``'s session holds the advisory ``lock``: one process of many leads, the
    others stand by and take over when the leader's session ends. False if ``stopping`` came first."""
    while not stopping.is_set():
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
            return True
        standing_by()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), retry_seconds)
    return False
