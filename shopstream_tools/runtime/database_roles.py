"""Who may do what in PostgreSQL: one database per service, owned by that service's owner role, and
one login role per service that may read and write its own tables and nothing else.

- ``<service>_owner`` (NOLOGIN) owns the database, its schema objects and ``schema_migrations``;
  migrations run as it (the admin connects and ``SET ROLE``s to it), so DDL never needs the
  service's own credentials.
- ``<service>_service`` (LOGIN, password) may connect to its own database only (CONNECT is revoked
  from PUBLIC, so order-service's role cannot even open the product database), read and write the
  tables, use the sequences and make temporary tables; it may not create anything in the schema,
  and it is no superuser, cannot create roles or databases.

The same function provisions the private cluster (``postgres.start``) and RDS or the compose
PostgreSQL (``deploy/docker/provision.py``, the ``migrate`` container), through the admin role
(``postgres_admin_user``). Everything is idempotent: it also moves a cluster made before these
roles existed (tables owned by the admin) to its owner roles, and sets the runtime role's password
again, which is how a rotated password reaches PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shopstream.config import SERVICES, Settings

RUNTIME_TABLE_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
RUNTIME_SEQUENCE_RIGHTS = "USAGE, SELECT, UPDATE"

# Objects of the public schema not owned by the owner role yet (a cluster from before the roles):
# relations (an identity or serial sequence follows its table), functions and types.
_ADOPT = """
DO $adopt$
DECLARE
    owner text := $owner$%(owner)s$owner$;
    item record;
BEGIN
    FOR item IN
        SELECT format('ALTER %%s %%s OWNER TO %%I',
                      CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                     WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE'
                                     ELSE 'TABLE' END,
                      c.oid::regclass, owner) AS sql
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND pg_get_userbyid(c.relowner) <> owner
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                          AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))
        UNION ALL
        SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, owner)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> owner
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
        UNION ALL
        SELECT format('ALTER TYPE %%s OWNER TO %%I', t.oid::regtype, owner)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND pg_get_userbyid(t.typowner) <> owner
          AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
    LOOP
        EXECUTE item.sql;
    END LOOP;
END
$adopt$;
"""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def provision(
    admin_url: str, database: str, owner: str, runtime_role: str, runtime_password: str
) -> bool:
    """Roles, database and rights of one service; True when the database was created now.
    ``admin_url`` points at the server's maintenance database (``postgres``)."""
    created = False
    conn = await asyncpg.connect(admin_url)
    try:
        admin = await conn.fetchval("SELECT current_user")
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner):
            await conn.execute(f"CREATE ROLE {quote_ident(owner)} NOLOGIN")
        # membership lets a non-superuser admin (RDS's master user) give it the database and
        # SET ROLE to it for the migrations; a superuser has both anyway
        if not await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", admin, owner):
            await conn.execute(f"GRANT {quote_ident(owner)} TO {quote_ident(admin)}")
        login = (
            f"LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            f" PASSWORD {quote_literal(runtime_password)}"
        )
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", runtime_role):
            await conn.execute(f"ALTER ROLE {quote_ident(runtime_role)} {login}")
        else:
            await conn.execute(f"CREATE ROLE {quote_ident(runtime_role)} {login}")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            try:
                await conn.execute(
                    f"CREATE DATABASE {quote_ident(database)} OWNER {quote_ident(owner)}"
                )
                created = True
            except asyncpg.DuplicateDatabaseError:
                pass  # another starter created it meanwhile
        db = quote_ident(database)
        await conn.execute(f"ALTER DATABASE {db} OWNER TO {quote_ident(owner)}")
        await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
        await conn.execute(
            f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {quote_ident(runtime_role)}"
        )
    finally:
        await conn.close()
    await _grant_inside(_in_database(admin_url, database), owner, runtime_role)
    return created


def _in_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


async def _grant_inside(url: str, owner: str, runtime_role: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        own, run = quote_ident(owner), quote_ident(runtime_role)
        await conn.execute(f"ALTER SCHEMA public OWNER TO {own}")
        await conn.execute(_ADOPT % {"owner": owner})
        await conn.execute(f"SET ROLE {own}")
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {run}")
        await conn.execute(f"GRANT {RUNTIME_TABLE_RIGHTS} ON ALL TABLES IN SCHEMA public TO {run}")
        await conn.execute(
            f"GRANT {RUNTIME_SEQUENCE_RIGHTS} ON ALL SEQUENCES IN SCHEMA public TO {run}"
        )
        # what later migrations create, the runtime role may use as soon as they commit
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {RUNTIME_TABLE_RIGHTS} ON TABLES TO {run}"
        )
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {RUNTIME_SEQUENCE_RIGHTS}"
            f" ON SEQUENCES TO {run}"
        )
    finally:
        await conn.close()


async def provision_all(settings: Settings, services: tuple[str, ...] = SERVICES) -> list[str]:
    """Every service's roles and database, with the passwords ``settings`` knows; the databases
    created now."""
    created = []
    for service in services:
        role = settings.database_role(service)
        password = settings.postgres_password_of(role)
        if not password:
            raise RuntimeError(
                f"no password for PostgreSQL role {role}: set SHOPSTREAM_POSTGRES_PASSWORD"
            )
        if await provision(
            settings.admin_database_url(service, "postgres"),
            service,
            settings.database_owner(service),
            role,
            password,
        ):
            created.append(service)
    return created


# The local runtime's generated credentials ------------------------------------------------------


def local_roles(settings: Settings) -> list[str]:
    """The login roles of the private cluster: its admin and each service's runtime role."""
    return [settings.postgres_admin_user, *(settings.database_role(s) for s in SERVICES)]


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    tmp.replace(path)


def ensure_local_passwords(settings: Settings, rotate: tuple[str, ...] = ()) -> Path:
    """One random password a role (kept when present, made anew for the roles in ``rotate``), and
    the libpq password file that psql, pg_dump and pgbench read (``PGPASSFILE``); return it."""
    folder = settings.postgres_credentials_path
    for role in local_roles(settings):
        if role in rotate or not (folder / role).exists():
            _write_private(folder / role, secrets.token_urlsafe(32))
    lines = [
        f"{settings.postgres_host}:{port}:*:{_pgpass(role)}:"
        f"{_pgpass(settings.postgres_password_of(role))}"
        for role in local_roles(settings)
        for port in settings.postgres_ports  # the HA profile's nodes, each
    ]
    _write_private(pgpass_path(settings), "\n".join(lines) + "\n")
    return pgpass_path(settings)


async def rotate_local_passwords(settings: Settings, roles: tuple[str, ...] = ()) -> list[str]:
    """New passwords for ``roles`` (default: every login role of the private cluster), set in
    PostgreSQL through the admin's current password, then written to their files. Running services
    keep their sessions and open new ones with the new password (``db.create_pool`` reads the file
    on every connect); returns the roles rotated."""
    chosen = roles or tuple(local_roles(settings))
    unknown = set(chosen) - set(local_roles(settings))
    if unknown:
        raise ValueError(f"not a role of the private cluster: {sorted(unknown)}")
    new = {role: secrets.token_urlsafe(32) for role in chosen}
    conn = await asyncpg.connect(settings.admin_database_url())
    try:
        for role, password in new.items():
            await conn.execute(
                f"ALTER ROLE {quote_ident(role)} PASSWORD {quote_literal(password)}"
            )
            _write_private(settings.postgres_credentials_path / role, password)
    finally:
        await conn.close()
    ensure_local_passwords(settings)  # the libpq password file follows
    return list(chosen)


def pgpass_path(settings: Settings) -> Path:
    return settings.postgres_credentials_path / "pgpass"


def _pgpass(field: str) -> str:
    return field.replace("\\", "\\\\").replace(":", "\\:")


def libpq_env(settings: Settings) -> dict[str, str]:
    """What a libpq tool (psql, pg_dump, pgbench) needs in its environment to log in: the admin's
    password, and the password file for the other roles."""
    env = {"PGPASSFILE": str(pgpass_path(settings))}
    password = settings.postgres_password_of(settings.postgres_admin_user)
    if password and not pgpass_path(settings).exists():
        env["PGPASSWORD"] = password
    return env
