"""A private PostgreSQL cluster under the data folder, on its own port, one database per service.

PostgreSQL refuses to run as root; when the platform runs as root (CI does), the server runs as the
``postgres`` account that Debian's package creates, and that account owns the cluster's folder.

Every connection, the Unix socket and loopback included, logs in with a SCRAM-SHA-256 password:
the first start generates one per role under ``<data>/auth/postgres`` (mode 0600) and the roles
are those of ``database_roles`` (an admin, and per service an owner and a runtime role). A cluster
made before (``trust``) is moved to passwords on its next start.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from shopstream.config import SERVICES, Settings
from shopstream_tools.runtime import database_roles, postgres_ha, processes, supervision
from shopstream_tools.runtime.postgres_server import HBA, SERVER_SETTINGS, bin_dir

NAME = "postgres"


def cluster_dir(settings: Settings) -> Path:
    return settings.data_path / "postgres"


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def initialised(settings: Settings) -> bool:
    if postgres_ha.enabled(settings):
        return postgres_ha.initialised(settings)
    return (cluster_dir(settings) / "PG_VERSION").exists()


def init(settings: Settings) -> None:
    database_roles.ensure_local_passwords(settings)
    data = cluster_dir(settings)
    if initialised(settings):
        return
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    _give_to_server_user(data)
    # initdb reads the admin's password from a file the server account can read, gone right after
    pwfile = data.parent / ".postgres-admin-password"
    pwfile.write_text(settings.postgres_password_of(settings.postgres_admin_user) + "\n")
    pwfile.chmod(0o600)
    _give_to_server_user(pwfile)
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir() / "initdb"),
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-U",
                    settings.postgres_admin_user,
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "-D",
                    str(data),
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    _write_hba(settings)


def _write_settings(data: Path) -> None:
    """SERVER_SETTINGS in their own file, written at every start so a cluster made by an older
    version gets today's settings; included last by postgresql.conf, so they win."""
    (data / "shopstream.conf").write_text(
        "# written by shopstream_tools/runtime/postgres.py at every start\n"
        + "".join(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
    )
    conf = data / "postgresql.conf"
    include = "include 'shopstream.conf'\n"
    text = conf.read_text()
    if not text.endswith(include):
        conf.write_text(text.replace(include, "") + "\n" + include)


def _write_hba(settings: Settings) -> None:
    hba = cluster_dir(settings) / "pg_hba.conf"
    hba.write_text(HBA)
    _give_to_server_user(hba)


def _trusting(settings: Settings) -> bool:
    """A cluster initialised before passwords (``initdb -A trust``)."""
    hba = cluster_dir(settings) / "pg_hba.conf"
    return hba.exists() and hba.read_text() != HBA


def pid(settings: Settings) -> int | None:
    """The postmaster's pid (in the HA profile, the primary's)."""
    if postgres_ha.enabled(settings):
        node = postgres_ha.primary(settings)
        return postgres_ha.postmaster_pid(settings, node) if node else None
    try:
        return int((cluster_dir(settings) / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def running(settings: Settings) -> bool:
    if postgres_ha.enabled(settings):
        return postgres_ha.primary(settings) is not None
    return processes.alive(pid(settings)) and processes.port_open(settings.postgres_port)


def start(settings: Settings) -> None:
    """Run the postmaster under supervisord (as the server user when we are root), so a killed
    database is started again; wait until it accepts connections. The HA profile's pair:
    ``postgres_ha``."""
    if postgres_ha.enabled(settings):
        postgres_ha.start(settings)
        ensure_databases(settings)
        return
    init(settings)
    if running(settings):
        return
    data = cluster_dir(settings)
    _write_settings(data)
    argv = [str(bin_dir() / "postgres"), "-D", str(data), "-p", str(settings.postgres_port),
            "-k", str(data)]  # fmt: skip
    user = "postgres" if os.geteuid() == 0 else None
    # SIGINT is PostgreSQL's fast shutdown: sessions are ended, the checkpoint written
    supervision.add(settings, NAME, argv, user=user, stop_signal="INT")
    processes.wait_until(lambda: running(settings) and _accepts(settings), 60, NAME)
    if _trusting(settings):  # still open to anyone: give the admin its password, then close
        password = settings.postgres_password_of(settings.postgres_admin_user)
        psql(settings, f"ALTER ROLE {database_roles.quote_ident(settings.postgres_admin_user)}"
                       f" PASSWORD {database_roles.quote_literal(password)}")  # fmt: skip
        _write_hba(settings)
        psql(settings, "SELECT pg_reload_conf()")
    ensure_databases(settings)


def _accepts(settings: Settings) -> bool:
    """Past recovery and accepting sessions (an open port may still answer "starting up")."""
    try:
        return psql(settings, "SELECT 1").strip() == "1"
    except subprocess.CalledProcessError:
        return False


def stop(settings: Settings) -> None:
    if postgres_ha.enabled(settings):
        postgres_ha.stop(settings)
        return
    if supervision.supervised(settings, NAME):
        supervision.stop(settings, NAME)
        return
    if not processes.alive(pid(settings)):
        return
    subprocess.run(  # a cluster started by pg_ctl before supervision
        _as_server_user(
            [str(bin_dir() / "pg_ctl"), "-D", str(cluster_dir(settings)), "-m", "fast", "-w", "stop"]
        ),
        check=False,
        stdout=subprocess.DEVNULL,
    )


def login_args(settings: Settings, database: str, role: str = "") -> list[str]:
    """Where a libpq tool (psql, pg_dump, pgbench) logs in: the admin unless ``role`` names
    another; the password comes from ``libpq_env``, never from the command line."""
    return [*server_args(settings), "-U", role or settings.postgres_admin_user, "-d", database]


def server_args(settings: Settings) -> list[str]:
    """Every node of the cluster (libpq's host and port lists): with ``libpq_env``'s
    ``PGTARGETSESSIONATTRS=read-write``, a tool reaches whichever node is the primary now."""
    ports = settings.postgres_ports
    hosts = ",".join([settings.postgres_host] * len(ports))
    return ["-h", hosts, "-p", ",".join(str(p) for p in ports)]


def libpq_env(settings: Settings) -> dict[str, str]:
    primary = {"PGTARGETSESSIONATTRS": "read-write"} if postgres_ha.enabled(settings) else {}
    return {**os.environ, **database_roles.libpq_env(settings), **primary}


def psql(settings: Settings, sql: str, database: str = "postgres") -> str:
    result = subprocess.run(
        [
            shutil.which("psql") or str(bin_dir() / "psql"),
            *login_args(settings, database),
            "-v",
            "ON_ERROR_STOP=1",
            "-Atqc",
            sql,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=libpq_env(settings),
    )
    return result.stdout


def ensure_databases(settings: Settings) -> None:
    """Each service's database, owner role and runtime role (with its password from the
    credentials folder, so a rotated one takes effect here)."""
    asyncio.run(database_roles.provision_all(settings, SERVICES))


def destroy(settings: Settings) -> None:
    stop(settings)
    shutil.rmtree(cluster_dir(settings), ignore_errors=True)
    shutil.rmtree(postgres_ha.home(settings), ignore_errors=True)
