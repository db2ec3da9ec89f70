"""Grafana on Kubernetes shows the dashboards compose shows.

The dashboards are generated into deploy/grafana/dashboards (infra/grafana/dashboards.py), which
compose mounts. Kustomize reads nothing outside its root, so deploy/k8s/monitoring/grafana holds a
copy that becomes a ConfigMap; the tests here fail when the copy, or what the overlays render from
it, differs from the generated dashboards, when a datasource the dashboards use is not provisioned
or does not lead to a Service and a pod Grafana may reach, and when the admin password is a literal.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy import helpers as h
from tests.deploy.test_kubernetes import MONITORING, NAMESPACE, allowed, of_kind, pod_labels

GENERATED = h.ROOT / "deploy" / "grafana" / "dashboards"
COMPOSE_PROVIDER = h.ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
K8S_GRAFANA = h.K8S / "monitoring" / "grafana"
REFRESH = (
    "cp deploy/grafana/dashboards/*.json deploy/k8s/monitoring/grafana/dashboards/ "
    "(and list a new file in deploy/k8s/monitoring/kustomization.yaml)"
)
PROVISIONING = "/etc/grafana/provisioning"


def generated() -> dict[str, str]:
    found = {p.name: p.read_text() for p in sorted(GENERATED.glob("*.json"))}
    assert found, f"no dashboard in {GENERATED}"
    return found


def test_the_dashboards_copy_equals_the_generated_dashboards() -> None:
    copied = {p.name: p.read_text() for p in sorted((K8S_GRAFANA / "dashboards").glob("*.json"))}
    assert copied == generated(), f"deploy/k8s/monitoring/grafana/dashboards differs: {REFRESH}"
    assert (K8S_GRAFANA / "dashboards.yml").read_text() == COMPOSE_PROVIDER.read_text(), (
        "cp deploy/grafana/provisioning/dashboards/dashboards.yml deploy/k8s/monitoring/grafana/"
    )


# The rendered Grafana ----------------------------------------------------------------------------
def _grafana(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "grafana"
    ]
    return deployment


def _mounted(docs: tuple[dict[str, Any], ...], deployment: dict[str, Any]) -> dict[str, Any]:
    """mount path -> the ConfigMap (or Secret) mounted there, or the volume when it is neither."""
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    namespace = deployment["metadata"]["namespace"]
    objects = {
        (d["kind"], d["metadata"]["name"]): d
        for d in docs
        if d["kind"] in ("ConfigMap", "Secret") and d["metadata"].get("namespace") == namespace
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    found = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            found[mount["mountPath"]] = objects[("ConfigMap", volume["configMap"]["name"])]
        else:
            found[mount["mountPath"]] = volume
    return found


def dashboard_problems(docs: tuple[dict[str, Any], ...]) -> list[str]:
    """What keeps Grafana from showing exactly the generated dashboards."""
    grafana = _grafana(docs)
    mounted = _mounted(docs, grafana)
    (provider_file,) = mounted[f"{PROVISIONING}/dashboards"]["data"].values()
    (provider,) = yaml.safe_load(provider_file)["providers"]
    path = provider["options"]["path"]
    shown = mounted[path].get("data") or {}
    expected = generated()
    problems = [f"missing: {name}" for name in sorted(set(expected) - set(shown))]
    problems += [f"not generated: {name}" for name in sorted(set(shown) - set(expected))]
    problems += [
        f"differs: {name}"
        for name in sorted(set(shown) & set(expected))
        if shown[name] != expected[name]
    ]
    (container,) = grafana["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH") or ""
    if home.rpartition("/")[0] != path or home.rpartition("/")[2] not in shown:
        problems.append(f"home dashboard {home!r} is not a provisioned one")
    return problems


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_grafana_provisions_exactly_the_generated_dashboards(overlay: str) -> None:
    assert dashboard_problems(h.rendered(overlay)) == [], REFRESH


def test_the_dashboard_check_notices_a_missing_or_changed_dashboard() -> None:
    docs = copy.deepcopy(h.rendered("dev"))
    (dashboards,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("grafana-dashboards-")
    ]
    del dashboards["data"]["kafka.json"]
    board = json.loads(dashboards["data"]["order-pipeline.json"])
    board["title"] = "something else"
    dashboards["data"]["order-pipeline.json"] = json.dumps(board)
    assert dashboard_problems(docs) == ["missing: kafka.json", "differs: order-pipeline.json"]


def _datasources(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    mounted = _mounted(docs, _grafana(docs))
    return [
        source
        for text in mounted[f"{PROVISIONING}/datasources"]["data"].values()
        for source in yaml.safe_load(text)["datasources"]
    ]


def _uids_used() -> set[str]:
    uids = set()
    for text in generated().values():
        for panel in json.loads(text)["panels"]:
            uids.add(panel["datasource"]["uid"])
            uids |= {t["datasource"]["uid"] for t in panel.get("targets", []) if "datasource" in t}
    return uids


def _pod_behind(docs: tuple[dict[str, Any], ...], url: str) -> tuple[dict[str, Any], str, int]:
    """The pod template a cluster URL leads to, its namespace and the container port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    assert host.endswith(".svc.cluster.local"), f"{url}: not a Service's cluster name"
    name, namespace = host.split(".")[:2]
    (service,) = [
        d
        for d in docs
        if d["kind"] == "Service"
        and d["metadata"]["name"] == name
        and d["metadata"].get("namespace") == namespace
    ]
    port = parts.port or 80
    (service_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    selector = service["spec"]["selector"]
    (workload,) = [
        d
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
        and d["metadata"].get("namespace") == namespace
        and selector.items() <= pod_labels(d).items()
    ]
    target = service_port.get("targetPort", port)
    container_ports = [
        p
        for c in workload["spec"]["template"]["spec"]["containers"]
        for p in c.get("ports") or []
        if target in (p.get("name"), p["containerPort"])
    ]
    assert container_ports, f"{url}: no container of {workload['metadata']['name']} has {target}"
    return workload, namespace, int(container_ports[0]["containerPort"])


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_grafana_datasources_lead_to_what_the_dashboards_read(overlay: str) -> None:
    docs = h.rendered(overlay)
    sources = _datasources(docs)
    by_uid = {s["uid"]: s for s in sources}
    assert len(by_uid) == len(sources), "one datasource per uid"
    assert _uids_used() <= set(by_uid), "a dashboard reads a datasource Grafana does not have"
    grafana = pod_labels(_grafana(docs))
    for source in sources:
        workload, namespace, port = _pod_behind(docs, source["url"])
        assert allowed(overlay, grafana, MONITORING, pod_labels(workload), port, namespace), (
            f"{overlay}: network policies keep Grafana from {source['name']}"
        )
    prometheus, _, _ = _pod_behind(docs, by_uid["prometheus"]["url"])
    assert (prometheus["kind"], prometheus["metadata"]["name"]) == ("StatefulSet", "prometheus")
    zipkin = [d for d in of_kind(overlay, "Deployment") if d["metadata"]["name"] == "zipkin"]
    assert ("zipkin" in by_uid) == bool(zipkin), "Zipkin is a datasource where one runs"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_grafana_admin_password_comes_from_a_secret(overlay: str) -> None:
    docs = h.rendered(overlay)
    grafana = _grafana(docs)
    (container,) = grafana["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    for name, item in env.items():
        if "PASSWORD" in name:
            assert "value" not in item, f"{name} is a literal"
    ref = env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert not ref.get("optional"), "without it Grafana would start with admin/admin"
    secrets = [
        d
        for d in of_kind(overlay, "Secret")
        if d["metadata"]["name"] == ref["name"] and d["metadata"]["namespace"] == MONITORING
    ]
    if overlay == "eks":
        assert not secrets, "created by hand on EKS (aws/README.md), never stored here"
        assert f"secret generic {ref['name']}" in (h.AWS / "README.md").read_text()
    else:
        (secret,) = secrets
        assert ref["key"] in secret["data"]


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_only_the_monitoring_namespace_reaches_grafana(overlay: str) -> None:
    docs = h.rendered(overlay)
    grafana = pod_labels(_grafana(docs))
    (gateway,) = [d for d in of_kind(overlay, "Deployment") if d["metadata"]["name"] == "gateway"]
    assert not allowed(overlay, pod_labels(gateway), NAMESPACE, grafana, 3000, MONITORING)
    assert not allowed(overlay, {"app": "anything"}, "ingress-nginx", grafana, 3000, MONITORING)


def test_kubernetes_grafana_runs_the_image_compose_runs() -> None:
    image = h.compose_config()["services"]["grafana"]["image"]
    for overlay in h.OVERLAYS:
        (container,) = _grafana(h.rendered(overlay))["spec"]["template"]["spec"]["containers"]
        assert container["image"] == image, overlay
