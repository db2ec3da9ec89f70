"""The API gateway: Debian's nginx in front of the service instances, configured from Settings.

``start`` runs nginx as a daemon on the file ``gateway_conf.render`` writes, ``reload`` swaps the
instance list without dropping a request, ``stop`` lets in-flight requests finish.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

from shopstream.config import Settings
from shopstream_tools.runtime import processes
from shopstream_tools.runtime.gateway_conf import (
    NAME,
    SHUTDOWN_GRACE_SECONDS,
    WORKER_PROCESSES,
    access_log_path,
    conf_path,
    error_log_path,
    gateway_dir,
    nginx_binary,
    pid_path,
    render,
    size_bytes,
)

__all__ = ["NAME", "access_log_path", "conf_path", "gateway_dir", "render", "size_bytes"]

PROBE_USER_AGENT = "shopstream-gateway-probe"


# Process control --------------------------------------------------------------------------------
def _nginx(settings: Settings, conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        nginx_binary(),
        "-p",
        f"{gateway_dir(settings)}/",
        "-c",
        str(conf),
        # Startup errors go to our log, not to the compiled-in default.
        "-e",
        str(error_log_path(settings)),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _failure(what: str, result: subprocess.CompletedProcess[str] | None, settings: Settings) -> str:
    parts = [what]
    if result is not None and (result.stderr or result.stdout):
        parts.append((result.stderr or result.stdout).strip())
    with contextlib.suppress(OSError):
        tail = error_log_path(settings).read_text(errors="replace").splitlines()[-5:]
        if tail:
            parts.append("gateway.log: " + "\n".join(tail))
    return "\n".join(parts)


def _write_conf(settings: Settings, upstreams: dict[str, list[int]], path: Path) -> None:
    (gateway_dir(settings) / "tmp").mkdir(parents=True, exist_ok=True)
    processes.logs_dir(settings)
    path.write_text(render(settings, upstreams))


def pid(settings: Settings) -> int | None:
    """The master's pid, or None when it is not running (a stale pid file reads as None)."""
    try:
        master = int(pid_path(settings).read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if not processes.alive(master) or "nginx" not in processes.command_line(master):
        return None
    return master


def running(settings: Settings) -> bool:
    return pid(settings) is not None and processes.port_open(settings.gateway_port)


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("HEAD", "/", headers={"User-Agent": PROBE_USER_AGENT})
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _workers(master: int) -> dict[int, str]:
    """The master's children by pid, with titles like "nginx: worker process is shutting down"."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == master:
            child = int(stat.parent.name)
            children[child] = processes.command_line(child)
    return children



def start(settings: Settings, upstreams: dict[str, list[int]]) -> int:
    """Start nginx (or reload a running one with these upstreams); return the master's pid."""
    current = pid(settings)
    if current is not None:
        reload(settings, upstreams)
        return current
    pid_path(settings).unlink(missing_ok=True)
    conf = conf_path(settings)
    _write_conf(settings, upstreams, conf)
    result = _nginx(settings, conf)
    if result.returncode != 0:
        raise RuntimeError(_failure("gateway: nginx did not start", result, settings))
    # The launching process exits once it has forked the master, which then writes the pid file.
    processes.wait_until(lambda: pid(settings) is not None, 10, "gateway pid file")
    master = pid(settings)
    assert master is not None
    try:
        processes.wait_until(lambda: _answers(settings.gateway_port), 10, "gateway", pid=master)
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(_failure(str(exc), None, settings)) from exc
    return master


def reload(
    settings: Settings, upstreams: dict[str, list[int]], drain_timeout: float | None = None
) -> None:
    """Apply a new instance list gracefully; return once only the new configuration serves.

    nginx keeps listening throughout: the master starts new workers on the new config, and the
    old ones stop accepting, finish their in-flight requests and exit. Waiting for that last step
    means a caller may stop an instance it just removed without cutting a request off.
    """
    master = pid(settings)
    if master is None:
        start(settings, upstreams)
        return
    conf = conf_path(settings)
    candidate = conf.with_name("nginx.conf.next")
    _write_conf(settings, upstreams, candidate)
    checked = _nginx(settings, candidate, "-t", "-q")
    if checked.returncode != 0:
        raise RuntimeError(_failure(f"gateway: {candidate} failed nginx -t", checked, settings))
    candidate.replace(conf)

    old = set(_workers(master))
    result = _nginx(settings, conf, "-s", "reload")
    if result.returncode != 0:
        raise RuntimeError(_failure("gateway: nginx -s reload failed", result, settings))

    def new_workers_up() -> bool:
        titles = _workers(master)
        fresh = [p for p, title in titles.items() if p not in old and "worker process" in title]
        return len(fresh) >= WORKER_PROCESSES

    try:
        processes.wait_until(new_workers_up, 10, "gateway reload", pid=master)
    except (TimeoutError, RuntimeError) as exc:
        # The master keeps the old config when it cannot apply the new one (e.g. a port in use).
        raise RuntimeError(_failure(str(exc), None, settings)) from exc
    timeout = SHUTDOWN_GRACE_SECONDS + 5 if drain_timeout is None else drain_timeout
    processes.wait_until(
        lambda: not (old & set(_workers(master))), timeout, "gateway old workers draining"
    )


def stop(settings: Settings, timeout: float = SHUTDOWN_GRACE_SECONDS + 5) -> None:
    """Graceful quit: stop accepting, finish in-flight requests; kill after the timeout."""
    master = pid(settings)
    if master is None:
        pid_path(settings).unlink(missing_ok=True)
        return
    workers = set(_workers(master))
    result = _nginx(settings, conf_path(settings), "-s", "quit")
    if result.returncode != 0:
        # No readable conf to find the pid file through: -s quit is this signal.
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGQUIT)
    deadline = time.monotonic() + timeout
    while processes.alive(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    if processes.alive(master):
        processes.terminate(master, timeout=5)
    # A killed master leaves its workers behind; they must not keep the port.
    for worker in workers:
        if processes.alive(worker) and "nginx" in processes.command_line(worker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
    pid_path(settings).unlink(missing_ok=True)
