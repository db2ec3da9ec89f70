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
import shlex
import subprocess
from typing import Any

import httpx

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import patroni_config, processes, supervision
from shopstream_tools.runtime.patroni_config import (
    API_ROLE,
    RAFT,
    api_password,
    api_port,
    config_path,
    data_dir,
    home,
    node_name,
    nodes,
    port,
    server_user,
    witness_config_path,
    write_configs,
)
from shopstream_tools.runtime.postgres_server import bin_dir

__all__ = ["RAFT", "home", "node_name", "nodes", "port"]  # the names callers use from here

PATRONI_BIN = PROJECT_ROOT / "infra" / "patroni" / "venv" / "bin"


def enabled(settings: Settings) -> bool:
    return settings.postgres_nodes > 1


def initialised(settings: Settings) -> bool:
    return any((data_dir(settings, n) / "data" / "PG_VERSION").exists() for n in nodes(settings))


def start(settings: Settings) -> None:
    """Start the Raft witness and each node's Patroni under supervisord; wait for a primary that
    takes writes and a synchronous standby (on the first start Patroni runs initdb on one node and
    copies it to the other with pg_basebackup)."""
    if not (PATRONI_BIN / "patroni").exists():
        raise RuntimeError("Patroni not found in infra/patroni/venv: run scripts/bootstrap.sh")
    write_configs(settings)
    user = server_user()
    witness = [str(PATRONI_BIN / "patroni_raft_controller"), str(witness_config_path(settings))]
    supervision.add(settings, RAFT, _no_stdin(witness), user=user)
    for node in nodes(settings):
        argv = [str(PATRONI_BIN / "patroni"), str(config_path(settings, node))]
        supervision.add(settings, node_name(node), _no_stdin(argv), user=user)
    processes.wait_until(lambda: primary(settings) is not None, 120, "postgres primary")
    _share_configuration(settings)
    processes.wait_until(lambda: sync_standby(settings) is not None, 120, "postgres sync standby")


def _share_configuration(settings: Settings) -> None:
    """The cluster-wide settings of this version into the DCS (Patroni applies them on every node;
    those that need a restart are flagged ``pending restart`` in ``patronictl list``)."""
    node = primary(settings)
    auth = (API_ROLE, api_password(settings))
    answer = httpx.patch(f"http://127.0.0.1:{api_port(settings, node or 1)}/config",
                         json=patroni_config.shared(), auth=auth, timeout=10)  # fmt: skip
    answer.raise_for_status()


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
