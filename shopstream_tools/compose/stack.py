"""``shopstream compose up|down``: the compose stack from locally built images, with podman or Docker.

Start order is enforced here in three waves, because podman before 4.6 ignores ``depends_on``
health conditions and no engine waits for a one-off task on its own: PostgreSQL and Kafka until
healthy, then ``migrate`` until it exits 0, then everything else until every health check passes.
Host ports are the compose file's defaults plus ``port_offset`` (a second stack, or the container
test, publishes elsewhere; a port the offset would push below 1024
moves up by 10000); the project name keeps containers, networks and volumes apart.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.compose import identity, images
from shopstream_tools.compose.engine import Engine

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
STANDINS_FILE = PROJECT_ROOT / "deploy" / "docker" / "compose.standins.yml"
# The compose file's host ports (its ${NAME:-default} variables) and what each serves.
HOST_PORTS = {
    "GATEWAY_HOST_PORT": (8080, "gateway (the API)"),
    "GATEWAY_TLS_HOST_PORT": (8443, "gateway (the API over HTTPS)"),
    "GATEWAY_STATUS_HOST_PORT": (8079, "gateway status"),
    "POSTGRES_HOST_PORT": (5432, "PostgreSQL"),
    "KAFKA_HOST_PORT": (9094, "Kafka (external listener)"),
    "PROMETHEUS_HOST_PORT": (9090, "Prometheus"),
    "ALERTMANAGER_HOST_PORT": (9093, "Alertmanager"),
    "ZIPKIN_HOST_PORT": (9411, "Zipkin"),
    "GRAFANA_HOST_PORT": (3000, "Grafana"),
    "KAFKA_UI_HOST_PORT": (8090, "Kafka UI"),
}
INFRASTRUCTURE = ("postgres", "kafka")
ONE_OFF = ("migrate", "migrate-order")  # done is "exited 0" (wait_exited), not healthy


@dataclass
class Stack:
    engine: Engine
    project: str = "shopstream"
    tag: str = "0.1.0"
    port_offset: int = 0
    standins: bool = False
    profiles: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)

    def port(self, name: str) -> int:
        """The default plus the offset; one that would fall below 1024 moves up by 10000."""
        port = HOST_PORTS[name][0] + self.port_offset
        return port if port >= 1024 else port + 10000

    @property
    def home(self) -> Path:
        """The stack's files on the host: the local issuer's keys (``auth/``, private) and what
        the containers may read of them (``auth-public/``)."""
        return PROJECT_ROOT / "data-containers" / self.project

    def env(self) -> dict[str, str]:
        ports = {name: str(self.port(name)) for name in HOST_PORTS}
        return {**os.environ, **self.engine.env, "TAG": self.tag, **ports,
                "AUTH_DIR": str(identity.public_dir(self.home)),
                "GATEWAY_TLS_DIR": str(identity.tls_dir(self.home)), **self.extra_env}  # fmt: skip

    def client_settings(self) -> Settings:
        """Settings for tools on the host that talk to this stack (tokens, audits, the lab)."""
        return Settings.from_env({
            "SHOPSTREAM_DATA_DIR": str(self.home),
            "SHOPSTREAM_GATEWAY_PORT": str(self.port("GATEWAY_HOST_PORT")),
            "SHOPSTREAM_POSTGRES_HOST": "127.0.0.1",
            "SHOPSTREAM_POSTGRES_PORT": str(self.port("POSTGRES_HOST_PORT")),
            # an operator's tools read both databases: the admin, not a service's role
            "SHOPSTREAM_POSTGRES_USER": "shopstream",
            "SHOPSTREAM_POSTGRES_PASSWORD": os.environ.get("POSTGRES_PASSWORD", "shopstream-dev"),
            "SHOPSTREAM_POSTGRES_ADMIN_PASSWORD": os.environ.get("POSTGRES_PASSWORD", "shopstream-dev"),
            "SHOPSTREAM_KAFKA_BOOTSTRAP": f"localhost:{self.port('KAFKA_HOST_PORT')}",
        })  # fmt: skip

    def compose(self, *args: str, capture: bool = False) -> str:
        import subprocess

        files = ["-f", str(COMPOSE_FILE)]
        if self.standins:
            files += ["-f", str(STANDINS_FILE)]
        profiles = [arg for profile in self.profiles for arg in ("--profile", profile)]
        done = subprocess.run(
            [*self.engine.compose, "-p", self.project, *files, *profiles, *args],
            env=self.env(),
            check=True,
            capture_output=capture,
            text=True,
            cwd=PROJECT_ROOT,
        )
        return done.stdout if capture else ""

    def containers(self) -> dict[str, str]:
        """Container name -> compose service, for this project."""
        out = self.engine.run(
            "ps", "-a", "--filter", f"label=com.docker.compose.project={self.project}",
            "--format", "json", capture=True,
        )
        found: dict[str, str] = {}
        for row in json_rows(out):
            names = row.get("Names")
            name = names[0] if isinstance(names, list) else str(names)
            raw = row.get("Labels") or {}
            if isinstance(raw, str):  # Docker: "k=v,k=v"
                raw = dict(item.split("=", 1) for item in raw.split(",") if "=" in item)
            labels: dict[str, str] = dict(raw) if isinstance(raw, dict) else {}
            found[name] = labels.get("com.docker.compose.service", name)
        return found

    def wait_healthy(self, services: tuple[str, ...] | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending: dict[str, str] = {}
        while time.monotonic() < deadline:
            pending = {}
            for name, service in self.containers().items():
                if (services is not None and service not in services) or service in ONE_OFF:
                    continue
                state = self.engine.health(name)
                if state not in ("healthy", "none"):
                    pending[name] = state
            if not pending:
                return
            time.sleep(2)
        raise TimeoutError(f"not healthy after {timeout:.0f}s: {pending}")

    def wait_exited(self, service: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, owner in self.containers().items():
                if owner != service:
                    continue
                state = json.loads(self.engine.run("inspect", name, capture=True))[0]["State"]
                if not state.get("Running") and state.get("Status") in ("exited", "stopped"):
                    if state.get("ExitCode") != 0:
                        raise RuntimeError(f"{service} exited with {state.get('ExitCode')}")
                    return
            time.sleep(2)
        raise TimeoutError(f"{service} still running after {timeout:.0f}s")

    def up(self, timeout: float = 420.0) -> float:
        """Start in waves and wait for every health check; returns the seconds it took."""
        started = time.monotonic()
        identity.prepare(self.home)
        self.compose("up", "-d", *INFRASTRUCTURE)
        self.wait_healthy(INFRASTRUCTURE, timeout)
        # --no-recreate: podman-compose would otherwise replace what the earlier waves started.
        # --no-deps: the waves are the order; podman-compose's container dependencies
        # (--requires) trip podman 4.3 ("not found in input list") once a chain is two deep.
        for one_off in ONE_OFF:  # one service's database and roles after the other
            self.compose("up", "-d", "--no-recreate", "--no-deps", one_off)
            self.wait_exited(one_off, timeout)
        self.compose("up", "-d", "--no-recreate", "--no-deps")
        self.wait_healthy(None, timeout - (time.monotonic() - started))
        return time.monotonic() - started

    def down(self, volumes: bool = False) -> None:
        self.compose("down", *(["-v"] if volumes else []))

    def urls(self) -> list[str]:
        shown = ["GATEWAY_HOST_PORT", "GATEWAY_TLS_HOST_PORT", "PROMETHEUS_HOST_PORT", "ALERTMANAGER_HOST_PORT",
                 "ZIPKIN_HOST_PORT", "POSTGRES_HOST_PORT", "KAFKA_HOST_PORT"]
        if not self.standins or "registry-images" in self.profiles:
            shown += ["GRAFANA_HOST_PORT", "KAFKA_UI_HOST_PORT"]
        scheme = {"GATEWAY_TLS_HOST_PORT": "https"}
        found = [f"{HOST_PORTS[name][1]:<28} {scheme.get(name, 'http')}://localhost:{self.port(name)}"
                 for name in shown]  # fmt: skip
        return [*found, f"{'CA the HTTPS port chains to':<28} {identity.tls_dir(self.home) / 'ca.crt'}"]

    def build(self, work_dir: str) -> dict[str, float]:
        return images.build_all(self.engine, self.tag, self.standins, work_dir)


def json_rows(out: str) -> list[dict[str, object]]:
    out = out.strip()
    if not out:
        return []
    if out.startswith("["):  # podman: one JSON array
        return list(json.loads(out))
    return [json.loads(line) for line in out.splitlines() if line.strip()]  # Docker: JSON lines
