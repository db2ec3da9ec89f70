"""Who may do what in PostgreSQL, against the test platform's real private cluster: passwords on
every connection (loopback and the Unix socket included), one login role per service that reaches
only its own database and may create nothing, tables owned by the migrations' owner role, and the
generated credentials kept private (docs/security.md, "Database roles")."""

from __future__ import annotations

import asyncio
import shutil
import stat
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from shopstream import db
from shopstream.config import SERVICES
from shopstream_tools.runtime import database_roles, postgres

pytestmark = pytest.mark.integration


def _run(work: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(work())


def _connect(platform, role: str, database: str, password: str | None = None) -> Awaitable[Any]:
    s = platform.settings
    secret = s.postgres_password_of(role) if password is None else password
    return asyncpg.connect(host=s.postgres_host, port=s.postgres_port, user=role,
                           password=secret, database=database)  # fmt: skip


def test_order_service_role_cannot_open_the_product_database(platform) -> None:
    order_role = platform.settings.database_role("order")

    async def attempt() -> None:
        await (await _connect(platform, order_role, "product")).close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        _run(attempt)

    async def own_database() -> int:  # the same role, password and server: its own one opens
        conn = await _connect(platform, order_role, "order")
        try:
            return int(await conn.fetchval("SELECT count(*) FROM orders WHERE false"))
        finally:
            await conn.close()

    assert _run(own_database) == 0


def test_product_service_role_cannot_open_the_order_database(platform) -> None:
    async def attempt() -> None:
        await (await _connect(platform, platform.settings.database_role("product"), "order")).close()

    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        _run(attempt)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_role_is_no_superuser_and_creates_nothing(platform, service: str) -> None:
    settings = platform.settings

    async def check() -> dict[str, Any]:
        conn = await asyncpg.connect(settings.database_url(service))
        try:
            role = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
                " WHERE rolname = current_user"
            )
            owners = {r["o"] for r in await conn.fetch(
                "SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
            )}  # fmt: skip
            refused = []
            for ddl in (
                "CREATE TABLE intruder (id int)",
                "ALTER TABLE schema_migrations ADD COLUMN intruder int",
                "DROP TABLE schema_migrations",
                "CREATE SCHEMA intruder",
            ):
                try:
                    await conn.execute(ddl)
                except asyncpg.InsufficientPrivilegeError:
                    refused.append(ddl)
            # what it is for: reading and writing its tables (the outbox is in every database)
            writes = await conn.fetchval(
                "SELECT bool_and(has_table_privilege('outbox', p)) FROM unnest($1::text[]) p",
                ["SELECT", "INSERT", "UPDATE", "DELETE"],
            )
            return {"role": dict(role), "owners": owners, "refused": len(refused),
                    "writes": writes, "user": await conn.fetchval("SELECT current_user")}  # fmt: skip
        finally:
            await conn.close()

    found = _run(check)
    assert found["user"] == f"{service}_service"
    assert not any(found["role"].values()), found["role"]
    assert found["refused"] == 4
    assert found["writes"] is True
    # the migrations ran as the owner role: it owns every table, the service's role none
    assert found["owners"] == {settings.database_owner(service)}


def test_a_connection_without_the_password_is_refused_on_loopback_and_socket(platform) -> None:
    settings = platform.settings
    role = settings.database_role("product")

    async def attempt(password: str) -> None:
        await (await _connect(platform, role, "product", password)).close()

    for wrong in ("", "not-the-password"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            _run(lambda wrong=wrong: attempt(wrong))
    # libpq with no password at all, on 127.0.0.1 and on the Unix socket in the cluster's folder,
    # as the admin too: no `trust` line is left anywhere in pg_hba.conf
    for host in (settings.postgres_host, str(postgres.cluster_dir(settings))):
        result = subprocess.run(
            [shutil.which("psql") or "psql", "-h", host, "-p", str(settings.postgres_port), "-U",
             settings.postgres_admin_user, "-d", "postgres", "-w", "-Atc", "SELECT 1"],
            env={"PATH": "/usr/bin:/bin", "PGPASSFILE": "/dev/null"},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode != 0, f"{host}: logged in without a password"
        assert "password" in result.stderr, result.stderr


def test_the_generated_credentials_are_private(platform) -> None:
    settings = platform.settings
    folder = settings.postgres_credentials_path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(p.name for p in folder.iterdir())
    assert {"pgpass", settings.postgres_admin_user, *map(settings.database_role, SERVICES)} <= set(
        files
    )
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    passwords = {settings.postgres_password_of(r) for r in files if r != "pgpass"}
    assert len(passwords) == len(files) - 1, "every role its own password"
    assert all(len(p) >= 32 for p in passwords)


def test_a_rotated_password_takes_effect_without_a_restart(platform) -> None:
    settings = platform.settings
    role = settings.database_role("product")
    old = settings.postgres_password_of(role)

    async def rotate() -> tuple[list[str], int]:
        pool = await db.create_pool(settings, "product", size=1)  # opened with the old password
        try:
            rotated = await database_roles.rotate_local_passwords(settings, (role,))
            await pool.expire_connections()  # the next query needs a new session, hence a login
            return rotated, int(await pool.fetchval("SELECT 1"))
        finally:
            await pool.close()

    assert _run(rotate) == ([role], 1)
    new = settings.postgres_password_of(role)
    assert new != old
    with pytest.raises(asyncpg.InvalidPasswordError):
        _run(lambda: _connect(platform, role, "product", old))
    assert f":{role}:{new}" in database_roles.pgpass_path(settings).read_text()
