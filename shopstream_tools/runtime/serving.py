"""granian's app factory for ``shopstream serve``: a worker that dies with granian's main process.

granian runs the app in worker processes. If its main process is killed with SIGKILL it cannot stop
them, and an orphaned worker would go on serving on the instance's port beside the fresh instance
supervisord starts. So each worker asks Linux to kill it when its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
SERVICE_ENV = "SHOPSTREAM_SERVE_SERVICE"


def granian_argv(factory: str, host: str, port: int, *extra: str) -> list[str]:
    """How every HTTP app of the platform is served: granian, one worker on uvloop, by factory."""
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", host, "--port", str(port),
        "--workers", "1", "--loop", "uvloop", *extra, "--factory", factory,
    ]  # fmt: skip


def die_with_parent() -> None:
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def create() -> Any:
    die_with_parent()
    module = importlib.import_module(f"services.{os.environ[SERVICE_ENV]}.entrypoints.app")
    # a service may put a layer in front of its app (product: hot_reads); `create` is the app alone
    return getattr(module, "serve", module.create)()
