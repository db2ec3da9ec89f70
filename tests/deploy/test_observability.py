"""The deployments are observed the way the local platform is (shopstream_tools/runtime/prometheus.py, exporters.py).

- Prometheus scrapes the local platform's jobs, by the same names (the rules and the dashboards
  select by job): in compose from its static and DNS targets, on Kubernetes from the pods'
  annotations through the relabelling of deploy/k8s/monitoring/prometheus.yml, evaluated here.
- It loads the same rules: compose mounts infra/prometheus/rules itself; Kubernetes builds its
  ConfigMap from a copy, which must equal the original.
- The exporters watch what the local ones watch: the gateway's stub_status, the PostgreSQL server,
  the node with the same collectors, the Kafka broker through the JMX agent and the same rules file.
- Tracing is explicit in every service container: a Zipkin that exists in that deployment, or
  SHOPSTREAM_ZIPKIN_PORT=0. Left at the defaults a container would post spans to its own
  127.0.0.1:9411.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shopstream.config import Settings
from shopstream_tools.runtime import exporters, prometheus, satellites
from tests.deploy import helpers as h
from tests.deploy.test_kubernetes import MONITORING, NAMESPACE, allowed, of_kind

RULES_DIR = prometheus.RULES_DIR
KAFKA_JMX_CONFIG = exporters.KAFKA_JMX_CONFIG
K8S_MONITORING = h.K8S / "monitoring"
K8S_RULES_COPY = K8S_MONITORING / "rules"
K8S_KAFKA_JMX_COPY = h.K8S / "overlays" / "dev" / "kafka-jmx.yaml"
COMPOSE_PROMETHEUS = h.DOCKER / "prometheus" / "prometheus.yml"
COMPOSE_ALERTMANAGER = h.DOCKER / "alertmanager" / "alertmanager.yml"
DEFAULTS = Settings()

# Local jobs a deployment does not scrape, and why.
SUPERVISOR = "supervisord's event listener: containers are restarted by their orchestrator"
NOT_SCRAPED: dict[str, dict[str, str]] = {
    "compose": {
        "console": "the local operator console; compose runs kafbat/kafka-ui instead",
        "supervisor": SUPERVISOR,
    },
    "k8s-dev": {"console": "the local operator console; not deployed", "supervisor": SUPERVISOR},
    "k8s-eks": {
        "console": "the local operator console; not deployed",
        "supervisor": SUPERVISOR,
        "kafka": "MSK's brokers run no agent of ours (MSK open monitoring is a separate choice)",
        "zipkin": "no Zipkin in the overlay: tracing is off until config.env names an endpoint",
    },
}
# The port each exporter job is scraped on: the local platform's, so the same on every deployment.
EXPORTER_PORTS = {
    "gateway": DEFAULTS.nginx_exporter_port,
    "postgres": DEFAULTS.postgres_exporter_port,
    "node": DEFAULTS.node_exporter_port,
    "kafka": DEFAULTS.kafka_metrics_port,
}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="module")
def local_targets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """The local platform's scrape jobs and target groups when everything it can run is there."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(exporters, "jmx_agent_jar", lambda: Path("jmx_prometheus_javaagent.jar"))
        mp.setattr(satellites, "zipkin_jar", lambda: Path("zipkin-server-exec.jar"))
        mp.setattr(satellites, "console_present", lambda: True)
        settings = Settings(data_dir=str(tmp_path_factory.mktemp("local-platform")))
        return prometheus.scrape_targets(settings)


@pytest.fixture(scope="module")
def local_jobs(local_targets: dict[str, list[dict[str, Any]]]) -> set[str]:
    return set(local_targets)


def expected_jobs(deployment: str, local_jobs: set[str]) -> set[str]:
    return local_jobs - set(NOT_SCRAPED[deployment])


def test_the_expected_jobs_are_the_local_ones(local_jobs: set[str]) -> None:
    for deployment, skipped in NOT_SCRAPED.items():
        assert set(skipped) <= local_jobs, f"{deployment}: stale NOT_SCRAPED {sorted(skipped)}"
    assert set(EXPORTER_PORTS) <= local_jobs


def _promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool comes with Debian's prometheus package (scripts/bootstrap.sh)")
    return found


def _amtool() -> str:
    found = shutil.which("amtool")
    if not found:
        pytest.skip("amtool comes with Debian's prometheus-alertmanager package")
    return found


def _check_config(config: dict[str, Any], tmp_path: Path) -> None:
    """promtool on a Prometheus configuration, with its rule files pointed at the real rules."""
    config = copy.deepcopy(config)
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = h.run([_promtool(), "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: " in result.stdout and str(RULES_DIR) in result.stdout, (
        "promtool read no rule file"
    )


def _rule_files_dir(config: dict[str, Any]) -> str:
    (pattern,) = config["rule_files"]
    directory, _, glob = pattern.rpartition("/")
    assert glob == "*.yml", "every rules file, as the local platform loads them"
    return directory


def _rules_on_disk() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(RULES_DIR.glob("*.yml"))}


# Compose ---------------------------------------------------------------------------------------
def compose_prometheus() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_PROMETHEUS.read_text()))


def compose_targets() -> dict[str, list[tuple[str, int, str]]]:
    """job -> [(compose service, port, metrics path)], from static and DNS targets alike."""
    found: dict[str, list[tuple[str, int, str]]] = {}
    for job in compose_prometheus()["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        targets = found.setdefault(job["job_name"], [])
        for sd in job.get("dns_sd_configs") or []:
            targets += [(name, int(sd["port"]), path) for name in sd["names"]]
        for static in job.get("static_configs") or []:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                targets.append((host, int(port), path))
    return found


def _bind_mounts(service: str) -> dict[str, Path]:
    svc = h.compose_config()["services"][service]
    return {v["target"]: Path(v["source"]) for v in svc.get("volumes") or [] if v["type"] == "bind"}


def test_compose_prometheus_scrapes_every_local_job(local_jobs: set[str]) -> None:
    targets = compose_targets()
    missing = expected_jobs("compose", local_jobs) - set(targets)
    assert not missing, f"compose's Prometheus has no job {sorted(missing)}"
    services = h.compose_config()["services"]
    for job, found in targets.items():
        assert found, f"job {job} has no target"
        for host, port, _path in found:
            assert host == "localhost" or host in services, f"{job}: no compose service {host}"
            if job in EXPORTER_PORTS:
                assert port == EXPORTER_PORTS[job], f"{job} on :{port}"
    assert targets["zipkin"] == [("zipkin", DEFAULTS.zipkin_port, prometheus.METRICS_PATHS["zipkin"])]


def test_compose_targets_are_named_by_process_like_the_local_ones(
    local_targets: dict[str, list[dict[str, Any]]],
) -> None:
    """The resources dashboard sums by process and InstanceDown names it: without the label every
    process of a job would be one series."""
    names: list[str] = []
    for job in compose_prometheus()["scrape_configs"]:
        for static in job.get("static_configs") or []:
            process = (static.get("labels") or {}).get("process")
            assert process, f"{job['job_name']}: targets without a process label"
            names += [process] * len(static["targets"])
            local_names = {g["labels"]["process"] for g in local_targets.get(job["job_name"], [])}
            if len(local_names) == 1:
                assert {process} == local_names, f"{job['job_name']}: process {process}"
        for sd in job.get("dns_sd_configs") or []:
            for name in sd["names"]:
                for replica in ("10.1.2.3", "10.1.2.4"):
                    meta = {"__meta_dns_name": name, "__address__": f"{replica}:{sd['port']}"}
                    target = _relabel(meta, job.get("relabel_configs") or [])
                    assert target and target.get("process"), f"{job['job_name']}: no process"
                    names.append(target["process"])
    assert len(names) == len(set(names)), "two targets share a process label"


def test_compose_prometheus_loads_the_local_rules_and_passes_promtool(tmp_path: Path) -> None:
    config = compose_prometheus()
    mounts = _bind_mounts("prometheus")
    assert mounts[_rule_files_dir(config)] == RULES_DIR, "compose must mount the local rules"
    assert mounts["/etc/prometheus/prometheus.yml"] == COMPOSE_PROMETHEUS
    _check_config(config, tmp_path)


def test_compose_alerts_reach_alertmanager(tmp_path: Path) -> None:
    ((target,),) = [
        s["targets"]
        for a in compose_prometheus()["alerting"]["alertmanagers"]
        for s in a["static_configs"]
    ]
    host, port = target.split(":")
    alertmanager = h.compose_config()["services"][host]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    assert int(port) in {int(p["target"]) for p in alertmanager["ports"]}
    config = _bind_mounts(host)["/etc/alertmanager/alertmanager.yml"]
    assert config == COMPOSE_ALERTMANAGER
    assert f"--config.file={'/etc/alertmanager/alertmanager.yml'}" in alertmanager["command"]
    result = h.run([_amtool(), "check-config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "alertmanager.yml"
    broken.write_text(config.read_text().replace("receiver: operators", "receiver: nobody"))
    assert h.run([_amtool(), "check-config", str(broken)]).returncode != 0


def _javaagent(kafka_opts: str) -> tuple[str, int, str]:
    """(jar, port, config path) of the JMX exporter agent in KAFKA_OPTS."""
    (agent,) = [o for o in shlex.split(kafka_opts) if o.startswith("-javaagent:")]
    jar, port, config = agent.removeprefix("-javaagent:").replace("=", ":", 1).split(":")
    return jar, int(port), config


def test_compose_kafka_serves_jmx_metrics_by_the_local_rules() -> None:
    kafka = h.compose_config()["services"]["kafka"]
    jar, port, config = _javaagent(kafka["environment"]["KAFKA_OPTS"])
    assert port == EXPORTER_PORTS["kafka"]
    assert _bind_mounts("kafka")[config] == KAFKA_JMX_CONFIG
    dockerfile_path = h.ROOT / kafka["build"]["context"] / kafka["build"]["dockerfile"]
    dockerfile = dockerfile_path.read_text()
    # The agent is downloaded in a stage (its SHA-256 pinned) and copied to where KAFKA_OPTS says.
    assert re.search(rf"/opt/jmx-exporter/jmx_prometheus_javaagent-\*\.jar {re.escape(jar)}$",
                     dockerfile, flags=re.M), f"the image does not put the agent at {jar}"  # fmt: skip
    assert re.search(r"^COPY --from=\w+ /opt/jmx-exporter /opt/jmx-exporter$", dockerfile, flags=re.M)
    lock = (dockerfile_path.parent / "jmx-agent.lock").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}  \S+/jmx_prometheus_javaagent-[\d.]+\.jar\n", lock)
    # The broker tools in the health check must not load the agent a second time (port taken).
    (check,) = [t for t in kafka["healthcheck"]["test"] if "kafka-broker-api-versions" in t]
    assert check.startswith("KAFKA_OPTS= ")


def test_compose_exporters_watch_what_the_local_ones_do() -> None:
    services = h.compose_config()["services"]
    nginx = services["nginx-exporter"]["command"]
    assert f"--nginx.scrape-uri=http://gateway:{h.GATEWAY_STATUS_PORT}/nginx_status" in nginx
    postgres = services["postgres-exporter"]["environment"]
    app_env = services["product"]["environment"]
    host_port = f"{app_env['SHOPSTREAM_POSTGRES_HOST']}:{app_env['SHOPSTREAM_POSTGRES_PORT']}"
    assert postgres["DATA_SOURCE_URI"].startswith(f"{host_port}/")
    # the admin, as the local exporter: the services' own roles see only their own database
    migrate_env = services["migrate"]["environment"]
    assert postgres["DATA_SOURCE_USER"] == app_env["SHOPSTREAM_POSTGRES_ADMIN_USER"]
    assert postgres["DATA_SOURCE_PASS"] == migrate_env["SHOPSTREAM_POSTGRES_ADMIN_PASSWORD"]
    node = services["node-exporter"]["command"]
    collectors = {a.removeprefix("--collector.") for a in node if a.startswith("--collector.")}
    assert collectors - {"disable-defaults"} == set(exporters.NODE_COLLECTORS)
    assert "--collector.disable-defaults" in node


# Kubernetes ------------------------------------------------------------------------------------
def _config_map(overlay: str, prefix: str) -> dict[str, Any]:
    (found,) = [
        d for d in of_kind(overlay, "ConfigMap") if d["metadata"]["name"].startswith(prefix + "-")
    ]
    return found


def k8s_prometheus_config(overlay: str) -> dict[str, Any]:
    return dict(yaml.safe_load(_config_map(overlay, "prometheus-config")["data"]["prometheus.yml"]))


def _meta_name(annotation: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", annotation)


def _relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus' keep and replace relabelling (the only actions prometheus.yml uses)."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        value = rule.get("separator", ";").join(
            labels.get(name, "") for name in rule.get("source_labels", [])
        )
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if action == "keep":
            if not match:
                return None
        elif action == "replace":
            if match:
                replacement = rule.get("replacement", "$1")
                result = match.expand(re.sub(r"\$(\d+)", r"\\g<\1>", replacement))
                if result:
                    labels[rule["target_label"]] = result
                else:
                    labels.pop(rule["target_label"], None)
        else:
            pytest.fail(f"the evaluator knows no relabel action {action}")
    return labels


def pod_templates(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")]


def discovered(docs: tuple[dict[str, Any], ...], config: dict[str, Any]) -> dict[str, Any]:
    """job -> [(workload, namespace, port, path)]: what Prometheus would scrape, one pod per
    workload, as its kubernetes_sd_configs would describe it."""
    return {
        job: [(t["workload"], t["namespace_"], t["port"], t["__metrics_path__"]) for t in targets]
        for job, targets in discovered_targets(docs, config).items()
    }


def discovered_targets(
    docs: tuple[dict[str, Any], ...], config: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """job -> the relabelled label sets of its targets (plus workload, namespace_ and port)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for job in config["scrape_configs"]:
        (sd,) = job["kubernetes_sd_configs"]
        assert sd["role"] == "pod"
        namespaces = set(sd["namespaces"]["names"])
        for doc in pod_templates(docs):
            namespace = doc["metadata"]["namespace"]
            if namespace not in namespaces:
                continue
            template = doc["spec"]["template"]
            ports = [p for c in template["spec"]["containers"] for p in c.get("ports") or []]
            name = doc["metadata"]["name"]
            meta = {
                "job": job["job_name"],
                "__address__": f"10.1.2.3:{ports[0]['containerPort']}" if ports else "10.1.2.3",
                "__metrics_path__": job.get("metrics_path", "/metrics"),
                "__meta_kubernetes_namespace": namespace,
                "__meta_kubernetes_pod_name": f"{name}-0",
                "__meta_kubernetes_pod_ip": "10.1.2.3",
                "__meta_kubernetes_pod_phase": "Running",
                **{
                    f"__meta_kubernetes_pod_annotation_{_meta_name(k)}": v
                    for k, v in (template["metadata"].get("annotations") or {}).items()
                },
                **{
                    f"__meta_kubernetes_pod_label_{_meta_name(k)}": v
                    for k, v in (template["metadata"].get("labels") or {}).items()
                },
            }
            target = _relabel(meta, job.get("relabel_configs") or [])
            if target is None:
                continue
            port = int(target["__address__"].rsplit(":", 1)[1])
            extra = {"workload": name, "namespace_": namespace, "port": port}
            found.setdefault(target["job"], []).append({**target, **extra})
    return found


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_prometheus_scrapes_every_local_job(overlay: str, local_jobs: set[str]) -> None:
    docs = h.rendered(overlay)
    jobs = discovered(docs, k8s_prometheus_config(overlay))
    missing = expected_jobs(f"k8s-{overlay}", local_jobs) - set(jobs)
    assert not missing, f"{overlay}: no pod is scraped as job {sorted(missing)}"
    for job, targets in jobs.items():
        for workload, _namespace, port, _path in targets:
            (doc,) = [d for d in pod_templates(docs) if d["metadata"]["name"] == workload]
            declared = {
                p["containerPort"]
                for c in doc["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports") or []
            }
            assert port in declared, (
                f"{overlay}: {workload} is scraped on :{port}, not a port of it"
            )
            if job in EXPORTER_PORTS:
                assert port == EXPORTER_PORTS[job], f"{overlay}: {job} on :{port}"
    for role, port in {**h.HTTP_PORTS, **h.METRICS_PORTS}.items():
        assert [(t[0], t[2]) for t in jobs[role]] == [(role, port)], f"{overlay}: {role}"
    if "zipkin" in jobs:
        assert [t[3] for t in jobs["zipkin"]] == [prometheus.METRICS_PATHS["zipkin"]]


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_every_annotated_pod_is_scraped(overlay: str) -> None:
    """A pod asking to be scraped without a job (or outside the discovered namespaces) would be
    dropped silently: its metrics would never reach the rules."""
    docs = h.rendered(overlay)
    scraped = {
        t[0]
        for targets in discovered(docs, k8s_prometheus_config(overlay)).values()
        for t in targets
    }
    for doc in pod_templates(docs):
        annotations = doc["spec"]["template"]["metadata"].get("annotations") or {}
        if annotations.get("prometheus.io/scrape") == "true":
            assert doc["metadata"]["name"] in scraped, f"{overlay}: {doc['metadata']['name']}"


def test_the_discovery_evaluation_notices_a_missing_job() -> None:
    docs = copy.deepcopy(h.rendered("dev"))
    config = k8s_prometheus_config("dev")
    assert "gateway" in discovered(docs, config)
    for doc in pod_templates(docs):
        if doc["metadata"]["name"] == "gateway":
            del doc["spec"]["template"]["metadata"]["annotations"]["shopstream.io/job"]
    assert "gateway" not in discovered(docs, config)
    docs = copy.deepcopy(h.rendered("dev"))
    for doc in pod_templates(docs):
        if doc["metadata"]["name"] == "kafka":
            doc["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] = "false"
    assert "kafka" not in discovered(docs, config)


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_prometheus_loads_the_local_rules(overlay: str, tmp_path: Path) -> None:
    rules = _config_map(overlay, "prometheus-rules")["data"]
    assert rules == _rules_on_disk(), (
        f"{overlay}: the rules ConfigMap differs from infra/prometheus/rules: "
        "cp infra/prometheus/rules/*.yml deploy/k8s/monitoring/rules/"
    )
    config = k8s_prometheus_config(overlay)
    (prometheus,) = [
        d for d in of_kind(overlay, "StatefulSet") if d["metadata"]["name"] == "prometheus"
    ]
    pod = prometheus["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {
        m["mountPath"]: volumes[m["name"]]
        for m in container["volumeMounts"]
        if m["name"] in volumes
    }
    rules_volume = mounts[_rule_files_dir(config)]
    assert rules_volume["configMap"]["name"].startswith("prometheus-rules-")
    config_flag = next(a for a in container["args"] if a.startswith("--config.file="))
    config_volume = mounts[config_flag.removeprefix("--config.file=")]
    assert config_volume["configMap"]["name"].startswith("prometheus-config-")
    # Debian's promtool is built without Kubernetes discovery: check the rest of the file with the
    # discovery swapped for a static target (the evaluation above covers the discovery).
    static = copy.deepcopy(config)
    for job in static["scrape_configs"]:
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["10.1.2.3:9090"]}]
    _check_config(static, tmp_path)


def test_the_rules_copy_equals_the_local_rules() -> None:
    copied = {p.name: p.read_text() for p in sorted(K8S_RULES_COPY.glob("*.yml"))}
    assert copied == _rules_on_disk(), (
        "deploy/k8s/monitoring/rules differs from infra/prometheus/rules: "
        "cp infra/prometheus/rules/*.yml deploy/k8s/monitoring/rules/"
    )
    assert K8S_KAFKA_JMX_COPY.read_text() == KAFKA_JMX_CONFIG.read_text(), (
        "cp infra/prometheus/kafka-jmx.yaml deploy/k8s/overlays/dev/kafka-jmx.yaml"
    )


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_prometheus_may_discover_pods_and_reach_every_target(overlay: str) -> None:
    docs = h.rendered(overlay)
    (prometheus,) = [
        d for d in of_kind(overlay, "StatefulSet") if d["metadata"]["name"] == "prometheus"
    ]
    account = prometheus["spec"]["template"]["spec"]["serviceAccountName"]
    namespace = prometheus["metadata"]["namespace"]
    assert namespace == MONITORING
    roles = {d["metadata"]["name"]: d for d in of_kind(overlay, "ClusterRole")}
    granted = set()
    for binding in of_kind(overlay, "ClusterRoleBinding"):
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace} in binding[
            "subjects"
        ]:
            for rule in roles[binding["roleRef"]["name"]]["rules"]:
                granted |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    assert {("pods", "list"), ("pods", "watch")} <= granted, "discovery needs to list pods"
    assert all(verb in ("get", "list", "watch") for _, verb in granted), "read-only"
    source = dict(prometheus["spec"]["template"]["metadata"]["labels"])
    by_name = {d["metadata"]["name"]: d for d in pod_templates(docs)}
    for targets in discovered(docs, k8s_prometheus_config(overlay)).values():
        for workload, target_ns, port, _path in targets:
            pod = by_name[workload]["spec"]["template"]
            if pod["spec"].get("hostNetwork"):
                continue  # network policies do not apply to the node's own network
            labels = dict(pod["metadata"]["labels"])
            assert allowed(overlay, source, MONITORING, labels, port, target_ns), (
                f"{overlay}: network policies keep Prometheus from {workload}:{port}"
            )


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_exporters_watch_what_the_local_ones_do(overlay: str) -> None:
    by_name = {d["metadata"]["name"]: d for d in pod_templates(h.rendered(overlay))}
    gateway = {c["name"]: c for c in by_name["gateway"]["spec"]["template"]["spec"]["containers"]}
    assert (
        f"--nginx.scrape-uri=http://127.0.0.1:{h.GATEWAY_STATUS_PORT}/nginx_status"
        in gateway["nginx-exporter"]["args"]
    )
    (node,) = by_name["node-exporter"]["spec"]["template"]["spec"]["containers"]
    collectors = {
        a.removeprefix("--collector.") for a in node["args"] if a.startswith("--collector.")
    }
    assert collectors - {"disable-defaults"} == set(exporters.NODE_COLLECTORS)
    (postgres,) = by_name["postgres-exporter"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in postgres["env"]}
    for name, key in (
        ("PG_HOST", "SHOPSTREAM_POSTGRES_HOST"),
        ("PG_PORT", "SHOPSTREAM_POSTGRES_PORT"),
        ("DATA_SOURCE_USER", "SHOPSTREAM_POSTGRES_ADMIN_USER"),
    ):
        ref = env[name]["valueFrom"]["configMapKeyRef"]
        assert ref["name"].startswith("shopstream-config-") and ref["key"] == key
    (migrate,) = by_name["product"]["spec"]["template"]["spec"]["initContainers"]
    (password,) = [e for e in migrate["env"] if e["name"] == "SHOPSTREAM_POSTGRES_ADMIN_PASSWORD"]
    assert env["DATA_SOURCE_PASS"]["valueFrom"] == password["valueFrom"], "the admin's secret"
    assert env["DATA_SOURCE_URI"]["value"].startswith("$(PG_HOST):$(PG_PORT)/")
    # The in-cluster server has no TLS; RDS gets it, verified (tests/deploy/test_database_tls.py).
    assert env["PG_SSLMODE"]["value"] == ("disable" if overlay == "dev" else "verify-full")


def test_dev_kafka_serves_jmx_metrics_by_the_local_rules() -> None:
    (kafka,) = [d for d in of_kind("dev", "StatefulSet") if d["metadata"]["name"] == "kafka"]
    pod = kafka["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    jar, port, config = _javaagent(env["KAFKA_OPTS"])
    assert port == EXPORTER_PORTS["kafka"]
    assert container["image"].startswith("shopstream/kafka:")
    dockerfile = (h.DOCKER / "kafka" / "Dockerfile").read_text()
    assert f" {jar}\n" in dockerfile, f"the image does not put the agent at {jar}"
    directory, _, filename = config.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    data = _config_map("dev", "kafka-jmx")
    assert volume["configMap"]["name"] == data["metadata"]["name"]
    assert data["data"][filename] == KAFKA_JMX_CONFIG.read_text()


# Tracing ---------------------------------------------------------------------------------------
def _zipkin_host_exists(deployment: str, host: str, port: int) -> bool:
    if deployment == "compose":
        svc = h.compose_config()["services"].get(host) or {}
        return (
            svc.get("image", "").startswith("openzipkin/zipkin:") and port == DEFAULTS.zipkin_port
        )
    name, _, rest = host.partition(".")
    namespace = rest.split(".")[0] if rest else NAMESPACE
    services = [
        d
        for d in of_kind(deployment.removeprefix("k8s-"), "Service")
        if d["metadata"]["name"] == name and d["metadata"]["namespace"] == namespace
    ]
    return any(p["port"] == port for s in services for p in s["spec"]["ports"])


@pytest.mark.parametrize("deployment", [d for d in h.DEPLOYMENT_NAMES if d != "ecs"])
def test_every_service_container_traces_to_a_zipkin_or_not_at_all(deployment: str) -> None:
    apps = [w for w in h.workloads(deployment) if w.is_app]
    assert {w.name for w in apps} >= set(h.APP_ROLES)
    for w in apps:
        port = w.env.get("SHOPSTREAM_ZIPKIN_PORT")
        url = w.env.get("SHOPSTREAM_ZIPKIN_URL", "")
        assert port is not None, f"{deployment}: {w.name} leaves tracing to the defaults"
        if port == "0":
            continue
        assert url, f"{deployment}: {w.name} would post spans to its own 127.0.0.1:{port}"
        parts = urlsplit(url)
        assert parts.hostname and parts.hostname not in LOOPBACK, f"{deployment}: {url}"
        assert _zipkin_host_exists(deployment, parts.hostname, parts.port or 80), (
            f"{deployment}: {w.name} traces to {url}, which this deployment does not run"
        )


def test_tracing_is_on_where_a_zipkin_runs_and_off_on_eks() -> None:
    def ports(deployment: str) -> set[str]:
        return {w.env["SHOPSTREAM_ZIPKIN_PORT"] for w in h.workloads(deployment) if w.is_app}

    assert ports("compose") == {str(DEFAULTS.zipkin_port)}
    assert ports("k8s-dev") == {str(DEFAULTS.zipkin_port)}
    assert ports("k8s-eks") == {"0"}


def test_ecs_tracing_follows_the_zipkin_parameter_and_is_off_by_default() -> None:
    template = h.cfn("ecs.yaml")
    parameter = template["Parameters"]["ZipkinUrl"]
    assert parameter["Default"] == ""
    assert re.fullmatch(parameter["AllowedPattern"], "")
    assert re.fullmatch(parameter["AllowedPattern"], "http://zipkin.internal:9411")
    assert not re.fullmatch(parameter["AllowedPattern"], "zipkin:9411")
    condition = template["Conditions"]["HasZipkin"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ZipkinUrl"}, ""]}]}
    containers = [
        c
        for res in template["Resources"].values()
        if res["Type"] == "AWS::ECS::TaskDefinition"
        for c in res["Properties"]["ContainerDefinitions"]
    ]
    assert len(containers) >= 2 * len(h.APP_ROLES)  # each task: its role and its migrate
    for container in containers:
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        name = container["Name"]
        assert env["SHOPSTREAM_ZIPKIN_URL"] == {"Ref": "ZipkinUrl"}, name
        on, off = env["SHOPSTREAM_ZIPKIN_PORT"]["Fn::If"][1:]
        assert env["SHOPSTREAM_ZIPKIN_PORT"]["Fn::If"][0] == "HasZipkin", name
        assert off == "0" and int(on) != 0, f"{name}: tracing must be off without a URL"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_prometheus_adapter_reads_this_prometheus_by_namespace_and_pod(overlay: str) -> None:
    """The HPAs' request rate: prometheus-adapter maps series onto pods by these two labels."""
    values = yaml.safe_load((h.K8S / "addons" / "prometheus-adapter-values.yaml").read_text())
    url = urlsplit(values["prometheus"]["url"])
    name, namespace = (url.hostname or "").split(".")[:2]
    (service,) = [
        d
        for d in of_kind(overlay, "Service")
        if d["metadata"]["name"] == name and d["metadata"]["namespace"] == namespace
    ]
    assert values["prometheus"]["port"] in [p["port"] for p in service["spec"]["ports"]]
    (prometheus,) = [
        d for d in of_kind(overlay, "StatefulSet") if d["metadata"]["name"] == "prometheus"
    ]
    assert (
        service["spec"]["selector"].items()
        <= prometheus["spec"]["template"]["metadata"]["labels"].items()
    )
    targets = discovered_targets(h.rendered(overlay), k8s_prometheus_config(overlay))
    for service_name in h.HTTP_PORTS:
        (target,) = targets[service_name]
        assert target["namespace"] == NAMESPACE
        assert target["pod"] == f"{service_name}-0", "the pod label must be the pod's name"


def _zipkin_containers() -> list[tuple[str, dict[str, str]]]:
    found = [
        ("compose", {k: str(v) for k, v in svc.get("environment", {}).items()})
        for svc in h.compose_config()["services"].values()
        if svc.get("image", "").startswith("openzipkin/zipkin:")
    ]
    for d in of_kind("dev", "Deployment"):
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c["image"].startswith("openzipkin/zipkin:"):
                found.append(("k8s-dev", {e["name"]: str(e.get("value", "")) for e in c["env"]}))
    return found


def test_every_zipkin_keeps_no_more_spans_than_its_heap_holds() -> None:
    """The image keeps 500,000 spans whatever its heap; a 256m heap was full with 65k of the
    platform's spans, and Zipkin collected garbage from then on. Each Zipkin caps its store at
    8 KiB of heap per span."""
    containers = _zipkin_containers()
    assert {name for name, _ in containers} == {"compose", "k8s-dev"}
    for name, env in containers:
        (heap,) = re.findall(r"-Xmx(\S+)", env.get("JAVA_OPTS", ""))
        assert "MEM_MAX_SPANS" in env, f"{name}: Zipkin keeps the image's 500,000 spans"
        assert int(env["MEM_MAX_SPANS"]) <= satellites.zipkin_max_spans(heap), name
    local = satellites.zipkin_env(DEFAULTS)
    assert int(local["MEM_MAX_SPANS"]) == satellites.zipkin_max_spans(DEFAULTS.zipkin_heap)
    assert satellites.zipkin_max_spans("256m") == 32768
    assert satellites.zipkin_max_spans("1G") == 4 * satellites.zipkin_max_spans("256m")
