"""Patroni's files for the HA profile's PostgreSQL pair (``postgres_ha`` runs them): each node's
configuration, the Raft witness's, and the credentials only Patroni uses (replication, REST API).

Ports: node n's PostgreSQL on ``postgres_port + (n-1) * postgres_node_port_step``, its Patroni REST
API 100 above it, the Raft voters on ``postgres_port + 201..`` (the nodes, then the witness).
"""

from __future__ import annotations

import os
import pwd
import secrets
from pathlib import Path
from typing import Any

import yaml

from shopstream.config import Settings
from shopstream_tools.runtime import database_roles
from shopstream_tools.runtime.postgres_server import HBA, SERVER_SETTINGS, bin_dir

SCOPE = "shopstream"
RAFT = "postgres-raft"
REPLICATION_ROLE = "replicator"
API_ROLE = "patroni"  # the REST API's user for its unsafe calls (switchover, restart, reload)
# Failure detection: Patroni checks every LOOP_WAIT s; the leader lock lapses after TTL s when
# the leader's Patroni is gone (loop_wait + 2 * retry_timeout must stay within ttl).
LOOP_WAIT, RETRY_TIMEOUT, TTL = 1, 4, 10


def nodes(settings: Settings) -> range:
    return range(1, settings.postgres_nodes + 1)


def node_name(node: int) -> str:
    return f"postgres-{node}"


def home(settings: Settings) -> Path:
    return settings.data_path / "postgres-ha"


def data_dir(settings: Settings, node: int) -> Path:
    return home(settings) / f"node{node}"


def port(settings: Settings, node: int) -> int:
    return settings.postgres_ports[node - 1]


def api_port(settings: Settings, node: int) -> int:
    """Patroni's REST API (state, role, /metrics): 100 above the node's PostgreSQL port."""
    return port(settings, node) + 100


def raft_port(settings: Settings, member: int) -> int:
    """Raft voters 1..n are the nodes' Patroni, voter n+1 the witness: 200 above the first port."""
    return settings.postgres_port + 200 + member


def server_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _password(settings: Settings, role: str) -> str:
    """A role of Patroni's own (replication, REST API): made once, kept beside the others."""
    path = settings.postgres_credentials_path / role
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def api_password(settings: Settings) -> str:
    return _password(settings, API_ROLE)


def _parameters() -> dict[str, str]:
    # the single server's settings, as values (not SQL literals); Patroni sets listen_addresses
    params = {k: v.strip("'") for k, v in SERVER_SETTINGS.items() if k != "listen_addresses"}
    params["wal_log_hints"] = "on"  # pg_rewind needs it: the old primary rejoins by rewinding
    # a commit returns once the standby has applied it, not only flushed it: whatever was
    # acknowledged is visible there too. A new connection may reach the standby first (it is first
    # in the URL's list half the time): a role or database just created, or a password just
    # rotated, must be there, or asyncpg gives up instead of trying the next host.
    params["synchronous_commit"] = "remote_apply"
    return params


def shared() -> dict[str, Any]:
    """The cluster-wide part of the configuration, kept in the DCS: written there when the cluster
    is made, and again by every ``up`` (``postgres_ha.start``), so a change here reaches a cluster
    made before it."""
    return {
        "ttl": TTL,
        "loop_wait": LOOP_WAIT,
        "retry_timeout": RETRY_TIMEOUT,
        # a primary whose postmaster died fails over at once rather than waiting for its own
        # crash recovery; the standby holds every acknowledged commit
        "primary_start_timeout": 0,
        "synchronous_mode": True,
        "postgresql": {"use_pg_rewind": True, "use_slots": True, "parameters": _parameters()},
    }


def config(settings: Settings, node: int) -> dict[str, Any]:
    """Patroni's configuration of ``node``; the ``bootstrap`` part is written to the DCS by the
    node that initialises the cluster and is shared from then on."""
    others = [raft_port(settings, m) for m in range(1, settings.postgres_nodes + 2) if m != node]
    folder = data_dir(settings, node)
    hba = [line for line in _hba_lines() if line]
    return {
        "scope": SCOPE,
        "name": node_name(node),
        "log": {"level": "INFO"},
        "restapi": {
            "listen": f"127.0.0.1:{api_port(settings, node)}",
            "connect_address": f"127.0.0.1:{api_port(settings, node)}",
            "authentication": {"username": API_ROLE, "password": api_password(settings)},
        },
        "raft": {
            "data_dir": str(home(settings) / f"raft{node}"),
            "self_addr": f"127.0.0.1:{raft_port(settings, node)}",
            "partner_addrs": [f"127.0.0.1:{p}" for p in others],
        },
        "bootstrap": {
            "dcs": shared(),
            "initdb": [
                {"encoding": "UTF8"},
                {"locale": "C.UTF-8"},
                {"auth-host": "scram-sha-256"},
                {"auth-local": "scram-sha-256"},
            ],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{port(settings, node)}",
            "connect_address": f"127.0.0.1:{port(settings, node)}",
            "data_dir": str(folder / "data"),
            "bin_dir": str(bin_dir()),
            "pgpass": str(folder / "pgpass"),
            "parameters": {"unix_socket_directories": str(folder)},
            "authentication": {
                "superuser": {
                    "username": settings.postgres_admin_user,
                    "password": settings.postgres_password_of(settings.postgres_admin_user),
                },
                "replication": {
                    "username": REPLICATION_ROLE,
                    "password": _password(settings, REPLICATION_ROLE),
                },
            },
            "pg_hba": hba,
        },
    }


def _hba_lines() -> list[str]:
    lines = [line for line in HBA.splitlines() if line and not line.startswith("#")]
    # the standby streams from the primary as the replication role, with its password too
    return [*lines, f"host    replication {REPLICATION_ROLE} 127.0.0.1/32   scram-sha-256"]


def config_path(settings: Settings, node: int) -> Path:
    return home(settings) / f"{node_name(node)}.yml"


def witness_config_path(settings: Settings) -> Path:
    return home(settings) / f"{RAFT}.yml"


def _write(path: Path, content: dict[str, Any]) -> None:
    """Patroni's files hold passwords: 0600, the server account's."""
    tmp = path.with_suffix(".tmp")
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        yaml.safe_dump(content, file, sort_keys=False)
    _give_to_server_user(tmp)
    tmp.replace(path)


def write_configs(settings: Settings) -> None:
    database_roles.ensure_local_passwords(settings)
    folder = home(settings)
    folder.mkdir(parents=True, exist_ok=True)
    _give_to_server_user(folder)
    for node in nodes(settings):
        for path in (data_dir(settings, node), home(settings) / f"raft{node}"):
            path.mkdir(mode=0o700, exist_ok=True)
            _give_to_server_user(path)
        _write(config_path(settings, node), config(settings, node))
    witness = settings.postgres_nodes + 1
    raft_home = home(settings) / "raft-witness"
    raft_home.mkdir(mode=0o700, exist_ok=True)
    _give_to_server_user(raft_home)
    partners = [f"127.0.0.1:{raft_port(settings, m)}" for m in nodes(settings)]
    _write(witness_config_path(settings), {"raft": {
        "data_dir": str(raft_home), "self_addr": f"127.0.0.1:{raft_port(settings, witness)}",
        "partner_addrs": partners}})  # fmt: skip
