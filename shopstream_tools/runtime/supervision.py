"""The platform's Python processes under supervisord: restarted when they exit, stopped as a group.

We chose supervisord (PyPI ``supervisor``, pinned) over a supervisor of our own: it restarts a
process that exits or is killed, backs off while one fails to start (1 s, 2 s, 3 s ... for
``START_RETRIES`` tries) and then gives up on it (state FATAL, reported by ``status``, the console
and the ``ProcessCrashLoop`` alert) instead of looping forever; it stops a program by its
whole process group (``stopasgroup``/``killasgroup``), so a worker process never outlives ``down``.

Everything it runs is generated under ``<data>/supervisor``: ``supervisord.conf`` and one
``programs/<name>.conf`` per process. ``add`` writes a program's file and asks supervisord to load
it (XML-RPC over its unix socket); ``down`` shuts supervisord down, which stops every program, and
removes the program files so the next ``up`` starts only what it asks for.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from supervisor.xmlrpc import SupervisorTransport

from shopstream.config import Settings

NAME = "supervisord"
WATCH = "shopstream-watch"
START_SECONDS = 5  # a process that exits sooner than this after starting failed to start
START_RETRIES = 10  # then FATAL: a crash loop, reported, not retried forever (~1 min of backoff)
STOP_SECONDS = 25  # graceful stop before SIGKILL (granian's own worker kill timeout is 20 s)


def home(settings: Settings) -> Path:
    return settings.data_path / "supervisor"


def programs_dir(settings: Settings) -> Path:
    return home(settings) / "programs"


def socket_path(settings: Settings) -> Path:
    return home(settings) / "supervisor.sock"


def restarts_file(settings: Settings) -> Path:
    """Restart counts and crash loops, written by the event listener (``shopstream_tools.runtime.watch``)."""
    return home(settings) / "restarts.json"


def pid_file(settings: Settings) -> Path:
    return home(settings) / "supervisord.pid"


def metrics_port(settings: Settings) -> int:
    """The event listener's Prometheus port: two below the gateway's, so it follows its offset."""
    return settings.gateway_port - 2


def _logs(settings: Settings) -> Path:
    path = settings.data_path / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_file(settings: Settings, name: str) -> Path:
    """Where program ``name``'s output (stdout and stderr) goes."""
    return _logs(settings) / f"{name}.log"


def _ini(sections: dict[str, dict[str, str]]) -> str:
    parser = configparser.RawConfigParser()
    for section, values in sections.items():
        parser[section] = values
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def _env(env: dict[str, str]) -> str:
    # supervisord's syntax: KEY="value",KEY2="value2" (values quoted, % doubled)
    return ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in env.items())


def main_config(settings: Settings) -> str:
    watch = [sys.executable, "-m", "shopstream_tools.runtime.watch", "--port",
             str(metrics_port(settings)), "--state", str(restarts_file(settings))]  # fmt: skip
    return _ini({
        "unix_http_server": {"file": str(socket_path(settings)), "chmod": "0700"},
        "supervisord": {
            "logfile": str(_logs(settings) / "supervisord.log"),
            "logfile_maxbytes": "10MB",
            "pidfile": str(pid_file(settings)),
            "nodaemon": "true",
            "minfds": "4096",
        },
        "rpcinterface:supervisor": {
            "supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"
        },
        "supervisorctl": {"serverurl": f"unix://{socket_path(settings)}"},
        f"eventlistener:{WATCH}": {
            "command": " ".join(watch),
            "events": "PROCESS_STATE",
            "buffer_size": "1000",
            "autorestart": "true",
            "stderr_logfile": str(_logs(settings) / f"{WATCH}.log"),
        },
        "include": {"files": str(programs_dir(settings) / "*.conf")},
    })  # fmt: skip


class HowToRun(TypedDict, total=False):
    """A program's options besides its command: start retries (START_RETRIES), the account it runs
    as (supervisord's), the signal that stops it (TERM)."""

    retries: int
    user: str | None
    stop_signal: str


def program_config(
    settings: Settings,
    name: str,
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    **how: Unpack[HowToRun],
) -> str:
    retries = how.get("retries", START_RETRIES)
    user = how.get("user")
    stop_signal = how.get("stop_signal", "TERM")
    values = {
        "command": " ".join(argv),
        "directory": str(Path.cwd()),
        "autostart": "true",
        "autorestart": "true",
        "startsecs": str(START_SECONDS),
        "startretries": str(retries),
        "stopsignal": stop_signal,
        "stopwaitsecs": str(STOP_SECONDS),
        "stopasgroup": "true",
        "killasgroup": "true",
        "redirect_stderr": "true",
        "stdout_logfile": str(log_file(settings, name)),
        "stdout_logfile_maxbytes": "50MB",
        "stdout_logfile_backups": "2",
    }
    if env:
        values["environment"] = _env(env)
    if user:
        values["user"] = user
    return _ini({f"program:{name}": values})


def rpc(settings: Settings) -> Any:
    transport = SupervisorTransport(None, None, f"unix://{socket_path(settings)}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor


def running(settings: Settings) -> bool:
    if not socket_path(settings).exists():
        return False
    try:
        return bool(rpc(settings).getState()["statename"] == "RUNNING")
    except OSError:
        return False


def start(settings: Settings) -> None:
    """Start supervisord (if it is not running) with the settings in its environment, which every
    program inherits."""
    if running(settings):
        return
    folder = home(settings)
    programs_dir(settings).mkdir(parents=True, exist_ok=True)
    for stale in programs_dir(settings).glob("*.conf"):
        stale.unlink()  # left by a supervisord that was killed: `up` decides what runs
    conf = folder / "supervisord.conf"
    conf.write_text(main_config(settings))
    socket_path(settings).unlink(missing_ok=True)
    restarts_file(settings).unlink(missing_ok=True)  # counts since this supervisord started
    log = open(_logs(settings) / "supervisord.out", "ab")  # noqa: SIM115 - handed to the child
    subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **settings.as_env()}, start_new_session=True,
    )  # fmt: skip
    log.close()
    deadline = time.monotonic() + 30
    while not running(settings):
        if time.monotonic() > deadline:
            raise TimeoutError("supervisord did not start in 30 s")
        time.sleep(0.1)


def supervised(settings: Settings, name: str) -> bool:
    return (programs_dir(settings) / f"{name}.conf").exists()


def names(settings: Settings) -> list[str]:
    return sorted(p.stem for p in programs_dir(settings).glob("*.conf"))


def add(
    settings: Settings,
    name: str,
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    **how: Unpack[HowToRun],
) -> int:
    """Run ``argv`` as program ``name`` (started now, restarted whenever it exits); its pid."""
    start(settings)
    path = programs_dir(settings) / f"{name}.conf"
    # the settings of this call, not those supervisord started with (the lab restarts services
    # with other settings)
    full_env = {**settings.as_env(), **(env or {})}
    config = program_config(settings, name, argv, full_env, **how)
    before = path.read_text() if path.exists() else None
    path.write_text(config)
    server = rpc(settings)
    server.reloadConfig()
    if before is not None and before != config:  # as `supervisorctl update`: the new config applies
        with contextlib.suppress(xmlrpc.client.Fault):
            server.stopProcess(name, True)
        with contextlib.suppress(xmlrpc.client.Fault):
            server.removeProcessGroup(name)
    with contextlib.suppress(xmlrpc.client.Fault):
        server.addProcessGroup(name)  # a Fault: already loaded
    info = server.getProcessInfo(name)
    if info["statename"] in ("STOPPED", "EXITED", "FATAL"):
        with contextlib.suppress(xmlrpc.client.Fault):
            server.startProcess(name, False)
    return pid(settings, name) or 0


def pid(settings: Settings, name: str) -> int | None:
    try:
        return int(rpc(settings).getProcessInfo(name)["pid"]) or None
    except (OSError, xmlrpc.client.Fault):
        return None


def stop(settings: Settings, name: str, remove: bool = False) -> None:
    """Stop a program (its whole process group); it stays stopped until started again."""
    if not running(settings):
        return
    server = rpc(settings)
    with contextlib.suppress(xmlrpc.client.Fault):
        server.stopProcess(name, True)
    if remove:
        with contextlib.suppress(xmlrpc.client.Fault):
            server.removeProcessGroup(name)
        (programs_dir(settings) / f"{name}.conf").unlink(missing_ok=True)


def restart(settings: Settings, name: str) -> None:
    """Stop a program and start it again, with the configuration it has."""
    stop(settings, name)
    with contextlib.suppress(xmlrpc.client.Fault):
        rpc(settings).startProcess(name, True)


def shutdown(settings: Settings) -> None:
    """Stop every program, then supervisord itself; forget the programs."""
    deadline = time.monotonic() + STOP_SECONDS + 10
    if running(settings):
        with contextlib.suppress(OSError, xmlrpc.client.Fault):
            rpc(settings).shutdown()
        while socket_path(settings).exists() and time.monotonic() < deadline:
            with contextlib.suppress(OSError, xmlrpc.client.Fault):
                rpc(settings).getState()
                time.sleep(0.2)
                continue
            break
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        main_pid = int(pid_file(settings).read_text().split()[0])
        while time.monotonic() < deadline + 5:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(main_pid, os.WNOHANG)  # started by this process: reap it
            if not Path(f"/proc/{main_pid}").exists():
                break
            time.sleep(0.1)
    for conf in programs_dir(settings).glob("*.conf"):
        conf.unlink()


@dataclass(frozen=True)
class ProgramState:
    name: str
    state: str  # RUNNING, STARTING, BACKOFF, FATAL, STOPPED, EXITED
    pid: int | None
    restarts: int
    description: str


def states(settings: Settings) -> dict[str, ProgramState]:
    """Every supervised program's state and how often it was restarted after an unplanned exit."""
    try:
        counts = json.loads(restarts_file(settings).read_text()).get("restarts", {})
    except (FileNotFoundError, ValueError):
        counts = {}
    if not running(settings):
        return {}
    return {
        info["name"]: ProgramState(
            info["name"],
            info["statename"],
            int(info["pid"]) or None,
            int(counts.get(info["name"], 0)),
            info["description"],
        )
        for info in rpc(settings).getAllProcessInfo()
    }
