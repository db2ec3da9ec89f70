"""Which container engine runs the stack here: podman or Docker, whichever can run containers.

podman on a machine without systemd or with a hybrid cgroup layout needs two runtime settings
(runc, no default ulimits): they live in deploy/docker/podman/containers.conf and are used when
CONTAINERS_CONF is unset. Health checks: podman schedules them with systemd timers, which such a
machine lacks, so ``health`` runs a container's check itself (``podman healthcheck run``).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from shopstream.config import PROJECT_ROOT

PODMAN_CONF = PROJECT_ROOT / "deploy" / "docker" / "podman" / "containers.conf"
# Any answer (even 401) from Docker Hub's API means the public base images can be pulled.
REGISTRY_PROBE = "https://registry-1.docker.io/v2/"


@dataclass(frozen=True)
class Engine:
    name: str  # "podman" or "docker"
    compose: tuple[str, ...]  # the compose command
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True, capture: bool = False) -> str:
        done = subprocess.run(
            [self.name, *args],
            env={**os.environ, **self.env},
            check=check,
            capture_output=capture,
            text=True,
        )
        return done.stdout if capture else ""

    def health(self, container: str) -> str:
        """healthy, unhealthy, starting, none (no check), exited or missing."""
        try:
            found = json.loads(self.run("inspect", container, capture=True))[0]
            state = found["State"]
        except (subprocess.CalledProcessError, IndexError, KeyError, json.JSONDecodeError):
            return "missing"
        if not state.get("Running"):
            return "exited"
        if not (found.get("Config") or {}).get("Healthcheck"):
            return "none"  # podman reports an empty Health even for a container without a check
        health = state.get("Health") or state.get("Healthcheck") or {}
        if self.name == "podman":
            done = subprocess.run(
                ["podman", "healthcheck", "run", container],
                env={**os.environ, **self.env},
                capture_output=True,
                text=True,
            )
            return "healthy" if done.returncode == 0 else "unhealthy"
        return str(health.get("Status") or "none")


def _works(command: list[str], env: dict[str, str]) -> bool:
    try:
        subprocess.run(
            command, env={**os.environ, **env}, check=True, capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def find() -> Engine | None:
    """podman first (it needs no daemon), then Docker; None when neither can run containers."""
    if shutil.which("podman"):
        env = {} if os.environ.get("CONTAINERS_CONF") else {"CONTAINERS_CONF": str(PODMAN_CONF)}
        compose = shutil.which("podman-compose") or _venv_tool("podman-compose")
        if compose and _works(["podman", "info"], env):
            return Engine("podman", (compose,), env)
    if shutil.which("docker") and _works(["docker", "info"], {}):
        if _works(["docker", "compose", "version"], {}):
            return Engine("docker", ("docker", "compose"))
        if shutil.which("docker-compose"):
            return Engine("docker", ("docker-compose",))
    return None


def _venv_tool(name: str) -> str | None:
    candidate = PROJECT_ROOT / ".venv" / "bin" / name
    return str(candidate) if candidate.exists() else None


def registry_reachable(timeout: float = 5.0) -> bool:
    try:
        urllib.request.urlopen(REGISTRY_PROBE, timeout=timeout)
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ssl.SSLError, OSError):
        return False
    return True
