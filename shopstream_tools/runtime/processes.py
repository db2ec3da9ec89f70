"""Start, find and stop the platform's OS processes: one pid file and one log file each."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from shopstream.config import Settings
from shopstream_tools.runtime import supervision


def run_dir(settings: Settings) -> Path:
    path = settings.data_path / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir(settings: Settings) -> Path:
    path = settings.data_path / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def pid_file(settings: Settings, name: str) -> Path:
    return run_dir(settings) / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return logs_dir(settings) / f"{name}.log"


def spawn(
    settings: Settings,
    name: str,
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a detached process whose output goes to its own log file; return its pid."""
    log = open(log_file(settings, name), "ab")  # noqa: SIM115 - handed to the child
    full_env = {**os.environ, **settings.as_env(), **(env or {})}
    proc = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=str(cwd) if cwd else None,
        start_new_session=True,
    )
    log.close()
    pid_file(settings, name).write_text(str(proc.pid))
    return proc.pid


def read_pid(settings: Settings, name: str) -> int | None:
    if supervision.supervised(settings, name):
        return supervision.pid(settings, name)
    path = pid_file(settings, name)
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    # A child of this process that exited is a zombie until reaped: reap it so it reads as dead.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except FileNotFoundError:
        return ""


def status_kb(pid: int, field: str) -> int:
    """One kB figure of ``/proc/<pid>/status`` (``VmRSS``, ``RssAnon``, ...); 0 once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    return status_kb(pid, "VmRSS") * 1024


def terminate(pid: int | None, timeout: float = 20.0) -> bool:
    """SIGTERM, wait for a graceful exit, SIGKILL after the timeout. True if it had to be killed."""
    if not alive(pid):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return False
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.05)
    return True


def stop(settings: Settings, name: str, timeout: float = 20.0) -> None:
    """Stop a process; a supervised one stays stopped until it is started again (``up``)."""
    if supervision.supervised(settings, name):
        supervision.stop(settings, name)
        return
    terminate(read_pid(settings, name), timeout)
    pid_file(settings, name).unlink(missing_ok=True)


def managed_names(settings: Settings) -> list[str]:
    pid_files = {p.stem for p in run_dir(settings).glob("*.pid")}
    return sorted(pid_files | set(supervision.names(settings)))


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, pid: int | None = None,
    log: Path | None = None,
) -> None:
    """Wait for ``check``; fail at once when ``pid`` exits, quoting the end of its ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not alive(pid):
            raise RuntimeError(f"{what}: process {pid} exited while starting{_tail(log)}")
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel takes outgoing connections' ports from: a server port inside it can be
    taken by a client between a free-port check and the bind."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 8192))
        end = f.read().decode(errors="replace").splitlines()[-lines:]
    return f"; the end of {log}:\n" + "\n".join(end)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False
