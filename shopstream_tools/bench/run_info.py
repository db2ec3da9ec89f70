"""Where a run's results go, and what they were measured on: run id, git revision, machine and
tool versions. The performance lab records its runs the same way."""

from __future__ import annotations

import os
import platform as pyplatform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from shopstream.config import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "performance-tests" / "results"


def run_id(now: datetime, rev: str) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{rev}"


def command_output(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""
    )


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "kernel": pyplatform.release(),
    }


def git_revision() -> tuple[str, bool]:
    rev = command_output(["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(
        subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    )
    return rev or "unknown", dirty


def tool_versions(wrk: str, pgbench: str, postgresql: str) -> dict[str, str]:
    from shopstream_tools.runtime import gateway

    return {
        "python": sys.version.split()[0],
        "nginx": command_output([gateway.nginx_binary(), "-v"]),
        "postgresql": postgresql,
        "pgbench": command_output([pgbench, "--version"]),
        "wrk": command_output([wrk, "-v"]),
    }
