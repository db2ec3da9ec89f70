"""docker-compose.yml: valid for Compose v2 (its real binary, offline), healthy start-up order,
the seed's ports, Kafka in KRaft mode, pinned images, Grafana and Prometheus provisioned."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy import helpers as h

SEED_PORTS = {
    "gateway": 8080,
    "kafka-ui": 8090,
    "prometheus": 9090,
    "zipkin": 9411,
    "grafana": 3000,
}
ONE_OFF = {"migrate", "migrate-order"}  # one per service, one after the other
# Services with nothing to run a health check with, and what watches them instead.
UNCHECKABLE = {
    "nginx-exporter": 'a FROM scratch image: no shell, no wget; Prometheus\' up{job="gateway"} '
    "and the InstanceDown alert watch it",
}


def test_compose_config_passes() -> None:
    result = h.run([h.compose_binary(), "-f", str(h.COMPOSE_FILE), "config", "-q"])
    assert result.returncode == 0, result.stderr


def test_compose_config_fails_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n"
        "  app:\n"
        "    image: nginx:1.28.0\n"
        "    depends_on:\n"
        "      missing:\n"
        "        condition: service_healthy\n"
    )
    result = h.run([h.compose_binary(), "-f", str(broken), "config", "-q"], cwd=tmp_path)
    assert result.returncode != 0
    assert "missing" in result.stderr


def test_every_service_has_a_health_check_and_starts_after_its_dependencies() -> None:
    services = h.compose_config()["services"]
    for name, svc in services.items():
        check = svc.get("healthcheck") or {}
        if name in ONE_OFF:
            assert svc.get("restart") == "no"
        elif name in UNCHECKABLE:
            assert not check.get("test"), f"{name} has a health check: drop it from UNCHECKABLE"
        else:
            assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        for dep, how in (svc.get("depends_on") or {}).items():
            assert dep not in UNCHECKABLE, f"{name} waits for {dep}, which is never healthy"
            expected = "service_completed_successfully" if dep in ONE_OFF else "service_healthy"
            assert how["condition"] == expected, f"{name} waits for {dep} only to start"
    for role in h.APP_ROLES:
        missing = ONE_OFF - set(services[role]["depends_on"])
        assert not missing, f"{role} may start before {sorted(missing)}"
    assert set(services["migrate"]["depends_on"]) == {"postgres", "kafka"}
    assert set(services["migrate-order"]["depends_on"]) == {"migrate"}


def test_the_seed_ports_are_published() -> None:
    services = h.compose_config()["services"]
    for name, port in SEED_PORTS.items():
        published = {int(p["published"]) for p in services[name].get("ports") or []}
        assert port in published, f"{name} is not on :{port}"


def test_only_the_gateway_ui_and_singletons_publish_so_the_services_scale() -> None:
    # `docker compose up --scale product=3`: a published host port binds once, so the second
    # replica of a service that publishes one fails to start.
    services = h.compose_config()["services"]
    publishing = {name for name, svc in services.items() if svc.get("ports")}
    assert not publishing & set(h.APP_ROLES), f"{sorted(publishing & set(h.APP_ROLES))} publish"
    assert publishing >= set(SEED_PORTS)
    singletons = {"postgres", "kafka"}  # one instance each, for tools on the host
    assert publishing <= set(SEED_PORTS) | singletons | {"alertmanager"}
    for role, port in h.HTTP_PORTS.items():
        assert str(port) in [str(p) for p in services[role].get("expose") or []]


def test_kafka_keeps_its_log_inside_the_mounted_volume() -> None:
    kafka = h.compose_config()["services"]["kafka"]
    log_dirs = kafka["environment"].get("KAFKA_LOG_DIRS")
    assert log_dirs, "without KAFKA_LOG_DIRS the image writes /tmp/kraft-combined-logs"
    mounted = [v["target"] for v in kafka["volumes"] if v["type"] == "volume"]
    for directory in log_dirs.split(","):
        assert any(Path(directory).is_relative_to(t) for t in mounted), (
            f"{directory} is outside the volumes {mounted}: recreating kafka loses every topic"
        )


def test_kafka_runs_the_local_brokers_jars_in_kraft_mode() -> None:
    kafka = h.compose_config()["services"]["kafka"]
    # Built from the jars infra/kafka/pom.xml resolves, each pinned by its checksum.
    dockerfile = h.ROOT / kafka["build"]["context"] / kafka["build"].get("dockerfile", "Dockerfile")
    lock = (dockerfile.parent / "jars.lock").read_text()
    version = re.search(r"<kafka.version>([\d.]+)<", (h.ROOT / "infra/kafka/pom.xml").read_text())
    assert version and f"kafka_2.13/{version[1]}/kafka_2.13-{version[1]}.jar" in lock
    assert all(re.fullmatch(r"[0-9a-f]{64}  \S+\.jar", line)
               for line in lock.splitlines() if not line.startswith("#"))  # fmt: skip
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from the settings
    bootstrap = h.compose_config()["services"]["product"]["environment"][
        "SHOPSTREAM_KAFKA_BOOTSTRAP"
    ]
    assert bootstrap in env["KAFKA_ADVERTISED_LISTENERS"]


def test_kafka_ui_is_kafbat() -> None:
    ui = h.compose_config()["services"]["kafka-ui"]
    assert ui["image"].startswith("kafbat/kafka-ui:")
    assert ui["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == "kafka:9092"


def test_images_are_pinned() -> None:
    for name, svc in h.compose_config()["services"].items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{name}: {image} is not pinned"


def test_grafana_is_provisioned_with_datasources_and_dashboards() -> None:
    grafana = h.compose_config()["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    provisioning = mounts["/etc/grafana/provisioning"]
    dashboards_dir = mounts["/var/lib/grafana/dashboards/shopstream"]
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())
    uids = {d["uid"] for d in sources["datasources"]}
    services = h.compose_config()["services"]
    for source in sources["datasources"]:
        host, port = source["url"].removeprefix("http://").split(":")
        assert host in services and int(port) in {int(p["target"]) for p in services[host]["ports"]}
    providers = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/shopstream"
    dashboards = sorted(dashboards_dir.glob("*.json"))
    assert dashboards, "no dashboard to provision"
    for path in dashboards:
        board = json.loads(path.read_text())
        assert board["uid"] and board["title"] and board["panels"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{path.name}: {panel['title']}"
            assert all(t["expr"].strip() for t in panel["targets"])


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool comes with Debian's prometheus package (scripts/bootstrap.sh)")
    return found


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    config = h.DOCKER / "prometheus" / "prometheus.yml"
    result = h.run([_promtool(), "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "prometheus.yml"
    broken.write_text(config.read_text().replace("scrape_interval: 5s", "scrape_interval: often"))
    assert h.run([_promtool(), "check", "config", str(broken)]).returncode != 0
