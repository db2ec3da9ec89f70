"""The HA profile's PostgreSQL: a primary and a synchronous standby that fail over by themselves.

We chose Patroni (PyPI, pinned in ``infra/patroni/requirements.txt``) over writing failover
ourselves or pg_auto_failover: it runs from PyPI with no other server (its Raft DCS, pysyncobj,
keeps the leader lock among its own processes, no etcd or Consul), it is the most used PostgreSQL
failover tool, and it does every part the profile needs: streaming replication with synchronous
commit (``synchronous_mode``: a commit is acknowledged only once the standby holds it, so a
failover loses no acknowledged order), promotion of the standby when the primary dies, and the old
primary back as a standby (``pg_rewind``) with no command typed.

Three supervised programs: ``postgres-1`` and ``postgres-2`` are Patroni, each owning one
postmaster (Patroni starts, restarts, promotes and demotes it); ``postgres-raft`` is a Raft voter
with no database (``patroni_raft_controller``), so either node keeps a majority when the other dies.
Patroni runs from its own virtualenv made with the system's Python, which the ``postgres`` account
can read (the project's may sit in root's home); bootstrap.sh makes it.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import database_roles, processes, supervision
from shopstream_tools.runtime.postgres_server import HBA, SERVER_SETTINGS, bin_dir

PATRONI_BIN = PROJECT_ROOT / "infra" / "patroni" / "venv" / "bin"
SCOPE = "shopstream"
RAFT = "postgres-raft"
REPLICATION_ROLE = "replicator"
API_ROLE = "patroni"  # the REST API's user for its unsafe calls (switchover, restart, reload)
# Failure detection: Patroni checks every LOOP_WAIT s; the leader lock lapses after TTL s when
# the leader's Patroni is gone (loop_wait + 2 * retry_timeout must stay within ttl).
LOOP_WAIT, RETRY_TIMEOUT, TTL = 1, 4, 10


def enabled(settings: Settings) -> bool:
    return settings.postgres_nodes > 1


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


def _server_user() -> str | None:
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


def _parameters() -> dict[str, str]:
    # the single server's settings, as values (not SQL literals); Patroni sets listen_addresses
    params = {k: v.strip("'") for k, v in SERVER_SETTINGS.items() if k != "listen_addresses"}
    params["wal_log_hints"] = "on"  # pg_rewind needs it: the old primary rejoins by rewinding
    return params


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
            "authentication": {"username": API_ROLE, "password": _password(settings, API_ROLE)},
        },
        "raft": {
            "data_dir": str(home(settings) / f"raft{node}"),
            "self_addr": f"127.0.0.1:{raft_port(settings, node)}",
            "partner_addrs": [f"127.0.0.1:{p}" for p in others],
        },
        "bootstrap": {
            "dcs": {
                "ttl": TTL,
                "loop_wait": LOOP_WAIT,
                "retry_timeout": RETRY_TIMEOUT,
                # a primary whose postmaster died fails over at once rather than waiting for
                # its own crash recovery; the standby holds every acknowledged commit
                "primary_start_timeout": 0,
                "synchronous_mode": True,
                "postgresql": {
                    "use_pg_rewind": True,
                    "use_slots": True,
                    "parameters": _parameters(),
                },
            },
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


def initialised(settings: Settings) -> bool:
    return any((data_dir(settings, n) / "data" / "PG_VERSION").exists() for n in nodes(settings))


def start(settings: Settings) -> None:
    """Start the Raft witness and each node's Patroni under supervisord; wait for a primary that
    takes writes and a synchronous standby (on the first start Patroni runs initdb on one node and
    copies it to the other with pg_basebackup)."""
    if not (PATRONI_BIN / "patroni").exists():
        raise RuntimeError("Patroni not found in infra/patroni/venv: run scripts/bootstrap.sh")
    write_configs(settings)
    user = _server_user()
    witness = [str(PATRONI_BIN / "patroni_raft_controller"), str(witness_config_path(settings))]
    supervision.add(settings, RAFT, _no_stdin(witness), user=user)
    for node in nodes(settings):
        argv = [str(PATRONI_BIN / "patroni"), str(config_path(settings, node))]
        supervision.add(settings, node_name(node), _no_stdin(argv), user=user)
    processes.wait_until(lambda: primary(settings) is not None, 120, "postgres primary")
    processes.wait_until(lambda: sync_standby(settings) is not None, 120, "postgres sync standby")


def _no_stdin(argv: list[str]) -> list[str]:
    """Run ``argv`` with /dev/null as its standard input, not supervisord's pipe. A backend that
    waited for the standby when its postmaster was killed reads its standard input before it
    exits (PostgreSQL 15 falls back to its interactive mode): from a pipe that stays open it
    waits forever and holds the shared memory, so the node never starts again."""
    command = " ".join(shlex.quote(word) for word in argv)
    return ["/bin/sh", "-c", shlex.quote(f"exec {command} </dev/null")]


def reload(settings: Settings) -> None:
    """New credentials in Patroni's files (``rotate-db-passwords``): rewrite them, SIGHUP."""
    write_configs(settings)
    for node in nodes(settings):
        if supervision.supervised(settings, node_name(node)):
            supervision.rpc(settings).signalProcess(node_name(node), "HUP")


def cluster(settings: Settings) -> list[dict[str, Any]]:
    """The members as Patroni sees them (name, role: leader / sync_standby / replica, state, lag),
    from the first node whose REST API answers; empty when none does."""
    for node in nodes(settings):
        try:
            answer = httpx.get(f"http://127.0.0.1:{api_port(settings, node)}/cluster", timeout=2)
        except httpx.HTTPError:
            continue
        if answer.status_code == 200:
            return list(answer.json().get("members", []))
    return []


def _node_of(member: dict[str, Any]) -> int | None:
    name = str(member.get("name", ""))
    return int(name.rsplit("-", 1)[1]) if name.startswith("postgres-") else None


def primary(settings: Settings) -> int | None:
    """The node that is primary and running now."""
    for member in cluster(settings):
        if member.get("role") == "leader" and member.get("state") == "running":
            return _node_of(member)
    return None


def sync_standby(settings: Settings) -> int | None:
    for member in cluster(settings):
        if member.get("role") == "sync_standby" and member.get("state") == "streaming":
            return _node_of(member)
    return None


def roles(settings: Settings) -> dict[int, str]:
    """Each node's role for ``status``: primary, sync standby, standby (or Patroni's state)."""
    names = {"leader": "primary", "sync_standby": "sync standby", "replica": "standby"}
    found: dict[int, str] = {}
    for member in cluster(settings):
        node = _node_of(member)
        if node is not None:
            role = names.get(str(member.get("role")), str(member.get("role")))
            state = str(member.get("state"))
            found[node] = role if state in ("running", "streaming") else f"{role} ({state})"
    return found


def postmaster_pid(settings: Settings, node: int) -> int | None:
    try:
        text = (data_dir(settings, node) / "data" / "postmaster.pid").read_text()
        return int(text.split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def stop(settings: Settings) -> None:
    """Stop Patroni (which stops its postmaster) and the witness; a postmaster that outlived its
    Patroni (a Patroni killed with -9) is stopped with pg_ctl."""
    leader = primary(settings) if supervision.running(settings) else None
    # the standby first: a primary stopped first would hand its lock to a standby about to stop
    for node in sorted(nodes(settings), key=lambda n: n == leader):
        supervision.stop(settings, node_name(node))
    supervision.stop(settings, RAFT)
    for node in nodes(settings):
        if processes.alive(postmaster_pid(settings, node)):
            argv = [str(bin_dir() / "pg_ctl"), "-D", str(data_dir(settings, node) / "data"),
                    "-m", "fast", "-w", "stop"]  # fmt: skip
            if os.geteuid() == 0:
                argv = ["runuser", "-u", "postgres", "--", *argv]
            subprocess.run(argv, check=False, stdout=subprocess.DEVNULL)
