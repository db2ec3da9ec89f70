"""Container images: hadolint on every Dockerfile, the image rules, and the scripts inside them.

No Docker engine here: images are not built. What can be checked offline is: the Dockerfiles
(hadolint, plus multi-stage / non-root / health check / pinned bases), that the build context
keeps what the Dockerfiles copy, and the image's own scripts, run for real on this machine.
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from shopstream.config import SERVICES
from tests.deploy import helpers as h

DOCKERFILES = h.dockerfiles()
# The stand-ins for public base images (deploy/docker/base) are local helpers, not shipped images:
# hadolint checks them, the image rules do not apply.
SHIPPED = [p for p in DOCKERFILES if "base" not in p.relative_to(h.DOCKER).parts]
# Nothing to build for PostgreSQL: Debian's package is the whole image, so one stage.
SINGLE_STAGE = {"deploy/docker/postgres/Dockerfile"}


def test_there_is_an_image_per_service_and_for_the_gateway() -> None:
    services = h.compose_config()["services"]
    for service in SERVICES:
        build = services[service]["build"]
        assert (h.ROOT / build["dockerfile"]).exists()
        assert build["args"]["SERVICE"] == service
        assert build["args"]["PORT"] == str(h.HTTP_PORTS[service])
        assert services[service]["image"].startswith(f"shopstream/{service}-service:")
    assert (h.ROOT / services["gateway"]["build"]["dockerfile"]).exists()
    assert {p.relative_to(h.ROOT).as_posix() for p in DOCKERFILES} >= {
        "deploy/docker/service.Dockerfile",
        "deploy/docker/gateway/Dockerfile",
    }


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(h.ROOT).as_posix())
def test_hadolint_passes(dockerfile: Path) -> None:
    result = h.run([h.tool("hadolint"), "--no-color", str(dockerfile)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    result = h.run([h.tool("hadolint"), "--no-color", str(bad)])
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3025"):  # latest tag, unpinned apt, shell-form CMD
        assert rule in result.stdout


def _stages(dockerfile: Path) -> list[list[str]]:
    """The instructions of each stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def _arg_defaults(dockerfile: Path) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)", dockerfile.read_text(), flags=re.M))


@pytest.mark.parametrize("dockerfile", SHIPPED, ids=lambda p: p.relative_to(h.ROOT).as_posix())
def test_images_are_multi_stage_pinned_non_root_and_health_checked(dockerfile: Path) -> None:
    stages = _stages(dockerfile)
    if dockerfile.relative_to(h.ROOT).as_posix() not in SINGLE_STAGE:
        assert len(stages) >= 2, "multi-stage: build (or check) stage, then a runtime stage"
    args = _arg_defaults(dockerfile)
    for stage in stages:
        base = stage[0].split()[1]
        base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert re.search(r":[0-9][\w.-]*$", base), f"base image {base} has no pinned version tag"
    final = stages[-1]
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), (
        "runtime stage must not run as root"
    )
    assert any(i.upper().startswith("HEALTHCHECK ") for i in final)


def test_build_context_keeps_what_the_dockerfiles_copy() -> None:
    patterns = [
        line.strip()
        for line in (h.ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the context is an allow-list: everything out, then what is needed"
    kept = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for dockerfile in SHIPPED:  # the stand-ins but zipkin's are built from their own folder
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                sources = [s for s in line.split()[1:-1] if not s.startswith("--")]
                for source in sources:
                    assert any(
                        source.rstrip("/") == k or source.startswith(k + "/") for k in kept
                    ), f"{dockerfile.name} copies {source}, which .dockerignore leaves out"
                    assert (h.ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
    for heavy in (".venv", ".git", "data"):
        assert not any(heavy == k or k.startswith(heavy + "/") for k in kept)


@pytest.mark.parametrize("script", ["entrypoint.sh", "healthcheck.py", "provision.py"])
def test_image_scripts_are_executable(script: str) -> None:
    assert (h.DOCKER / script).stat().st_mode & stat.S_IXUSR


# The entrypoint, run for real with a stand-in `shopstream` that records its arguments. ---------
@pytest.fixture
def entrypoint_env(tmp_path: Path) -> dict[str, str]:
    log = tmp_path / "calls.log"
    for name in ("shopstream", "shopstream-provision"):
        fake = tmp_path / name
        fake.write_text(f'#!/bin/sh\necho "{name} $* id=$SHOPSTREAM_INSTANCE_ID" >> {log}\n')
        fake.chmod(0o755)
    return {"PATH": f"{tmp_path}:/usr/bin:/bin", "APP_SERVICE": "order", "LOG": str(log)}


def _entrypoint(env: dict[str, str], *args: str) -> list[str]:
    result = subprocess.run(
        ["sh", str(h.DOCKER / "entrypoint.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return Path(env["LOG"]).read_text().splitlines()


def test_entrypoint_serves_the_image_service_by_default(entrypoint_env: dict[str, str]) -> None:
    hostname = socket.gethostname()
    assert _entrypoint(entrypoint_env) == [f"shopstream serve order --host 0.0.0.0 id={hostname}"]


def test_entrypoint_provisions_before_migrating(entrypoint_env: dict[str, str]) -> None:
    env = {**entrypoint_env, "SHOPSTREAM_INSTANCE_ID": "given"}
    # the image's own service only: its database, its roles, its migrations
    assert _entrypoint(env, "migrate") == [
        "shopstream-provision order id=given",
        "shopstream migrate order id=given",
    ]
    assert _entrypoint(env, "migrate", "product", "order")[-2:] == [
        "shopstream-provision product order id=given",
        "shopstream migrate product order id=given",
    ]


def test_entrypoint_passes_other_commands_through(entrypoint_env: dict[str, str]) -> None:
    calls = _entrypoint(entrypoint_env, "relay", "product", "--metrics-port", "9101")
    assert [c.rsplit(" id=", 1)[0] for c in calls] == [
        "shopstream relay product --metrics-port 9101"
    ]


# The health check script, against a real HTTP server on loopback. ------------------------------
def _load(script: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(script.replace(".py", ""), h.DOCKER / script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health/live" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_follows_the_answer(http_server: str) -> None:
    check = _load("healthcheck.py")
    assert check.main(["x", f"{http_server}/health/live"]) == 0
    assert check.main(["x", f"{http_server}/health/ready"]) == 1  # 503
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert check.main(["x", f"http://127.0.0.1:{closed}/health/live"]) == 1


def test_healthcheck_default_url_reads_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    check = _load("healthcheck.py")
    monkeypatch.setenv("APP_SERVICE", "order")
    monkeypatch.delenv("SHOPSTREAM_ORDER_PORT", raising=False)
    assert check.default_url() == f"http://127.0.0.1:{h.HTTP_PORTS['order']}{h.LIVENESS_PATH}"
    monkeypatch.setenv("SHOPSTREAM_ORDER_PORT", "18082")
    assert check.default_url() == "http://127.0.0.1:18082/health/live"


def test_provision_refuses_to_give_one_login_role_two_databases() -> None:
    provision = _load("provision.py")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SHOPSTREAM_POSTGRES_USER", "product_service")
        assert provision.main(["product", "order"]) == 2
        assert provision.main(["inventory"]) == 2
    assert provision.quote_ident('or"der') == '"or""der"'


@pytest.mark.integration
def test_provision_creates_databases_and_topics(platform: object) -> None:
    """shopstream-provision against the test platform's real PostgreSQL and Kafka."""
    import asyncio
    import uuid

    import asyncpg
    from confluent_kafka.admin import AdminClient

    settings = platform.settings  # type: ignore[attr-defined]
    suffix = uuid.uuid4().hex[:8]
    base = settings.database_url("product").rsplit("/", 1)[0]
    env = {
        **os.environ,
        **settings.as_env(),
        "SHOPSTREAM_PRODUCT_DATABASE_URL": f"{base}/deploy_product_{suffix}",
        "SHOPSTREAM_ORDER_DATABASE_URL": f"{base}/deploy_order_{suffix}",
        "SHOPSTREAM_TOPIC_PARTITIONS": f"deploy-test-{suffix}=3",
    }
    script = h.DOCKER / "provision.py"
    for _ in range(2):  # idempotent: the second run finds everything in place
        result = subprocess.run(
            [sys.executable, str(script), "product", "order"], env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    async def databases() -> set[str]:
        conn = await asyncpg.connect(settings.admin_database_url())
        try:
            rows = await conn.fetch("SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database")
            names = {r["datname"] for r in rows}
            owners = {r["datname"]: r["owner"] for r in rows}
            assert owners[f"deploy_product_{suffix}"] == "product_owner"
            assert owners[f"deploy_order_{suffix}"] == "order_owner"
            for name in (f"deploy_product_{suffix}", f"deploy_order_{suffix}"):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return names
        finally:
            await conn.close()

    assert {f"deploy_product_{suffix}", f"deploy_order_{suffix}"} <= asyncio.run(databases())
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    topic = admin.list_topics(timeout=10).topics[f"deploy-test-{suffix}"]
    assert len(topic.partitions) == 3
    admin.delete_topics([f"deploy-test-{suffix}"])


def test_the_documented_builds_name_the_nodes_platform() -> None:
    # Fargate and the EKS nodes are x86; ECR tags are immutable, so an arm64 first push sticks.
    readme = (h.AWS / "README.md").read_text()
    builds = re.findall(r"^(?:docker|podman) build[^\n]*", readme, re.MULTILINE)
    assert len(builds) >= 3
    assert all("--platform linux/amd64" in b for b in builds), builds
    nodegroup = h.cfn("eks.yaml")["Resources"]["NodeGroup"]["Properties"]
    assert "x86_64" in nodegroup["AmiType"]
    for task in h.cfn("ecs.yaml")["Resources"].values():
        if task["Type"] == "AWS::ECS::TaskDefinition":
            assert task["Properties"]["RuntimePlatform"]["CpuArchitecture"] == "X86_64"


def test_the_api_endpoint_and_load_balancer_ranges_are_parameters() -> None:
    eks = h.cfn("eks.yaml")
    assert "Default" not in eks["Parameters"]["PublicAccessCidr"], "the operator chooses it"
    cluster = eks["Resources"]["Cluster"]["Properties"]["ResourcesVpcConfig"]
    assert cluster["PublicAccessCidrs"] == [{"Ref": "PublicAccessCidr"}]
    group = h.cfn("network.yaml")["Resources"]["LoadBalancerSecurityGroup"]["Properties"]
    assert all(rule["CidrIp"] == {"Ref": "ClientCidr"} for rule in group["SecurityGroupIngress"])


@pytest.mark.parametrize("service", ["product", "order"])
def test_each_service_documents_its_api_without_what_the_image_leaves_out(service: str) -> None:
    """The service image drops Faker and Pygments (service.Dockerfile); Litestar imports Faker
    when a response is documented with generated examples, which crashed the order container at
    start. Each app builds its OpenAPI in a Python that cannot import them."""
    script = (
        "import sys\n"
        "class Pruned:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('faker', 'pygments'):\n"
        "            raise ModuleNotFoundError(name + ' is not in the image')\n"
        "sys.meta_path.insert(0, Pruned())\n"
        "from shopstream.config import Settings\n"
        f"from services.{service}.entrypoints.app import create\n"
        "assert create(Settings.from_env()).openapi_schema.paths\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=h.ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]

