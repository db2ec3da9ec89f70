"""Kubernetes manifests: rendered with the pinned kustomize, validated offline against the pinned
Kubernetes version's schemas (kubernetes-validate, strict), KEDA objects against their schema, and
the rules the issue sets: probes, resources, graceful stop, autoscaling, budgets, network policies.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from shopstream.config import Settings
from tests.deploy import helpers as h

KEDA_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "keda-scaledobject-v1alpha1.json").read_text()
)
KEDA_AUTH_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "keda-triggerauthentication-v1alpha1.json").read_text()
)
CUSTOM_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): KEDA_SCHEMA,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): KEDA_AUTH_SCHEMA,
}


def validate(doc: dict[str, Any]) -> None:
    """Raise on an invalid object; an object of a kind with no schema is an error too."""
    custom = CUSTOM_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    if custom:
        jsonschema.Draft202012Validator(custom).validate(doc)
    else:
        kubernetes_validate.validate(doc, h.KUBERNETES_VERSION, strict=True)


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [d for d in h.rendered(overlay) if d["kind"] == kind]


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return dict(doc["spec"]["template"]["metadata"]["labels"])


def shopstream_config(overlay: str) -> dict[str, Any]:
    """The services' settings; the monitoring's ConfigMaps (Prometheus, rules) are beside it."""
    (config,) = [
        d
        for d in of_kind(overlay, "ConfigMap")
        if d["metadata"]["name"].startswith("shopstream-config-")
    ]
    return config


def is_shopstream_image(image: str) -> bool:
    """Our own images (services, gateway), as opposed to the exporters' and Prometheus'."""
    return "shopstream/" in image and not image.startswith("shopstream/kafka:")


# Rendering and schema validation ------------------------------------------------------------
@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_every_rendered_object_validates_against_the_pinned_schemas(overlay: str) -> None:
    docs = h.rendered(overlay)
    assert len(docs) > 20
    for doc in docs:
        try:
            validate(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}"
            )


def test_validation_fails_broken_objects() -> None:
    (deployment,) = [
        d
        for d in h.rendered("dev")
        if d["metadata"]["name"] == "product" and d["kind"] == "Deployment"
    ]
    typo = copy.deepcopy(deployment)
    container = typo["spec"]["template"]["spec"]["containers"][0]
    container["livenessProbes"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(wrong_type)
    (scaled,) = [d for d in h.rendered("dev") if d["kind"] == "ScaledObject"][:1]
    bad_scaled = copy.deepcopy(scaled)
    bad_scaled["spec"]["maxReplicas"] = bad_scaled["spec"].pop("maxReplicaCount")
    with pytest.raises(jsonschema.ValidationError):
        validate(bad_scaled)
    bad_trigger = copy.deepcopy(scaled)
    bad_trigger["spec"]["triggers"][0]["metadata"]["lagTreshold"] = "10"
    with pytest.raises(jsonschema.ValidationError):
        validate(bad_trigger)
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate(unknown)


def test_kustomize_fails_a_broken_kustomization(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    result = h.run([h.kustomize(), "build", str(tmp_path)])
    assert result.returncode != 0
    assert "missing.yaml" in result.stderr


# Workload rules ----------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_workloads_have_probes_resources_and_a_graceful_stop(overlay: str) -> None:
    for doc in of_kind(overlay, "Deployment") + of_kind(overlay, "StatefulSet"):
        name = doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod.get("terminationGracePeriodSeconds", 30) >= 30, name
        for container in pod["containers"] + pod.get("initContainers", []):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (
                    f"{name}/{container['name']} {kind}"
                )
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
        for container in pod["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, name
        if name in (*h.HTTP_PORTS, "gateway"):
            (container,) = [c for c in pod["containers"] if c["name"] == name]
            assert container["lifecycle"]["preStop"], f"{name} has no pre-stop drain"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_configuration_comes_from_a_configmap_and_credentials_from_a_secret(overlay: str) -> None:
    config = shopstream_config(overlay)
    assert not any("PASSWORD" in key for key in config["data"])
    for doc in of_kind(overlay, "Deployment"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            if not is_shopstream_image(container["image"]):
                continue
            refs = [s["configMapRef"]["name"] for s in container.get("envFrom", [])]
            assert refs == [config["metadata"]["name"]], doc["metadata"]["name"]
            for item in container.get("env", []):
                if "PASSWORD" in item["name"]:
                    assert item["valueFrom"]["secretKeyRef"]["key"] == "password"
    secrets = of_kind(overlay, "Secret")
    if overlay == "eks":
        assert not secrets, (
            "production credentials are created from Secrets Manager, not stored here"
        )


def test_eks_overlay_uses_ecr_images_and_the_aws_endpoints() -> None:
    ours = [
        c["image"]
        for doc in of_kind("eks", "Deployment")
        for c in doc["spec"]["template"]["spec"]["containers"]
        if "shopstream/" in c["image"]
    ]
    assert len(ours) >= len(h.APP_ROLES) + 1
    for image in ours:
        assert ".dkr.ecr." in image, image
    config = shopstream_config("eks")
    assert config["data"]["SHOPSTREAM_POSTGRES_HOST"].endswith(".rds.amazonaws.com")
    assert ".kafka." in config["data"]["SHOPSTREAM_KAFKA_BOOTSTRAP"]
    (gateway,) = [d for d in of_kind("eks", "Service") if d["metadata"]["name"] == "gateway"]
    assert gateway["spec"]["type"] == "LoadBalancer"


# Autoscaling -------------------------------------------------------------------------------
@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_apis_scale_on_cpu_and_request_rate(overlay: str) -> None:
    deployments = {d["metadata"]["name"] for d in of_kind(overlay, "Deployment")}
    hpas = {d["metadata"]["name"]: d for d in of_kind(overlay, "HorizontalPodAutoscaler")}
    for service in (*h.HTTP_PORTS, "gateway"):
        hpa = hpas[service]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert kinds["Resource"]["resource"]["name"] == "cpu"
        if service in h.HTTP_PORTS:
            assert kinds["Pods"]["pods"]["metric"]["name"] == "http_requests_per_second"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_consumers_scale_on_kafka_lag_capped_at_the_partitions(overlay: str) -> None:
    config = shopstream_config(overlay)
    topics = Settings.from_env(config["data"]).topics()
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in of_kind(overlay, "ScaledObject")}
    assert set(scaled) == set(h.CONSUMER_GROUPS)
    consumers = {d["metadata"]["name"]: d for d in of_kind(overlay, "Deployment")}
    for name, groups in h.CONSUMER_GROUPS.items():
        spec = scaled[name]["spec"]
        # one trigger per group the process runs: KEDA scales on the largest lag of any of them
        triggered = {t["metadata"]["consumerGroup"]: t for t in spec["triggers"]}
        assert set(triggered) == set(groups), f"{name}: a trigger for each of {sorted(groups)}"
        for trigger in triggered.values():
            assert trigger["type"] == "kafka"
            assert trigger["metadata"].get("allowIdleConsumers", "false") == "false"
        cap = max(topics[t] for read in groups.values() for t in read)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= cap, (
            f"{name}: more consumers than the {cap} partitions it reads would sit idle"
        )
        env_source = spec["scaleTargetRef"]["envSourceContainerName"]
        pod = consumers[name]["spec"]["template"]["spec"]
        assert env_source in {c["name"] for c in pod["containers"]}
        assert "replicas" not in consumers[name]["spec"], "KEDA owns the replicas"


def test_the_consumer_groups_are_the_ones_the_code_runs() -> None:
    import importlib

    for name, groups in h.CONSUMER_GROUPS.items():
        module = importlib.import_module(f"services.{name.split('-')[0]}.entrypoints.consumers")
        in_code = {v for k, v in vars(module).items() if k.endswith("GROUP") and isinstance(v, str)}
        assert in_code == set(groups), f"{name} runs {sorted(in_code)}"


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_keda_reaches_kafka_by_its_fully_qualified_name(overlay: str) -> None:
    # KEDA's operator runs in namespace keda: a short name (kafka:9092) does not resolve there,
    # neither in the bootstrap list nor in the brokers' advertised listeners it is sent to next.
    bootstrap = shopstream_config(overlay)["data"]["SHOPSTREAM_KAFKA_BOOTSTRAP"]
    for server in bootstrap.split(","):
        host = server.rsplit(":", 1)[0]
        assert host.count(".") >= 2, f"{overlay}: {server} is not fully qualified"
    for broker in of_kind(overlay, "StatefulSet"):
        if broker["metadata"]["name"] != "kafka":
            continue
        env = {
            e["name"]: e.get("value", "")
            for c in broker["spec"]["template"]["spec"]["containers"]
            for e in c.get("env") or []
        }
        advertised = env["KAFKA_ADVERTISED_LISTENERS"].split("://", 1)[1]
        assert advertised == bootstrap, "the broker advertises the name KEDA resolved"
        namespace = broker["metadata"]["namespace"]
        assert advertised.startswith(f"kafka.{namespace}.svc.cluster.local:")


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_every_deployment_has_a_disruption_budget(overlay: str) -> None:
    budgets = of_kind(overlay, "PodDisruptionBudget")
    for doc in of_kind(overlay, "Deployment"):
        labels = pod_labels(doc)
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, f"{doc['metadata']['name']}: {len(matching)} budgets"


# Network policies, evaluated ------------------------------------------------------------------
NAMESPACE = "shopstream"
MONITORING = "monitoring"


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector:
        return True
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and labels.get(expr["key"]) in expr["values"]:
            return False
        if (expr["operator"] == "Exists") != present and expr["operator"] in (
            "Exists",
            "DoesNotExist",
        ):
            return False
    return True


def _peer_matches(
    peer: dict[str, Any], labels: dict[str, str], namespace: str, policy_ns: str
) -> bool:
    if "ipBlock" in peer:
        return namespace not in (NAMESPACE, MONITORING)  # outside traffic arrives as an address
    ns_labels = {"kubernetes.io/metadata.name": namespace}
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], ns_labels):
            return False
    elif namespace != policy_ns:
        return False
    return _selects(peer.get("podSelector", {}), labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int) -> bool:
    if not ports:
        return True
    return any(p["port"] <= port <= p.get("endPort", p["port"]) for p in ports)


def allowed(
    overlay: str,
    src: dict[str, str],
    src_ns: str,
    dst: dict[str, str],
    port: int,
    dst_ns: str = NAMESPACE,
) -> bool:
    """Whether NetworkPolicy semantics let src reach dst:port (both directions must allow).

    A policy applies to the pods of its own namespace only; the overlays hold two (shopstream and
    monitoring), and a namespace of neither stands for anything else in the cluster."""
    policies = of_kind(overlay, "NetworkPolicy")

    def direction(
        kind: str, subject: dict[str, str], subject_ns: str, peer: dict[str, str], peer_ns: str
    ) -> bool:
        relevant = [
            p
            for p in policies
            if kind in p["spec"]["policyTypes"]
            and p["metadata"]["namespace"] == subject_ns
            and _selects(p["spec"]["podSelector"], subject)
        ]
        if not relevant:
            return True
        key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        return any(
            _port_matches(rule.get("ports"), port)
            and (
                peers_key not in rule
                or any(
                    _peer_matches(x, peer, peer_ns, p["metadata"]["namespace"])
                    for x in rule[peers_key]
                )
            )
            for p in relevant
            for rule in p["spec"].get(key, [])
        )

    return direction("Egress", src, src_ns, dst, dst_ns) and direction(
        "Ingress", dst, dst_ns, src, src_ns
    )


def _labels(overlay: str, name: str) -> dict[str, str]:
    for doc in of_kind(overlay, "Deployment") + of_kind(overlay, "StatefulSet"):
        if doc["metadata"]["name"] == name:
            return pod_labels(doc)
    raise KeyError(name)


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_network_policies_let_only_the_gateway_reach_the_services(overlay: str) -> None:
    gw, product, order = (_labels(overlay, n) for n in ("gateway", "product", "order"))
    consumer = _labels(overlay, "product-consumer")
    outsider = {"app": "anything"}
    assert allowed(overlay, outsider, "ingress-nginx", gw, 8080)
    assert not allowed(overlay, outsider, "ingress-nginx", gw, 8079)
    assert allowed(overlay, gw, NAMESPACE, product, 8081)
    assert allowed(overlay, gw, NAMESPACE, order, 8082)
    assert allowed(overlay, order, NAMESPACE, product, 8081)  # sync reservations
    assert not allowed(overlay, outsider, "default", product, 8081)
    assert not allowed(overlay, consumer, NAMESPACE, order, 8082)
    assert not allowed(overlay, outsider, "default", consumer, 9103)
    assert allowed(overlay, {"app": "prometheus"}, "monitoring", consumer, 9103)


def test_network_policies_let_only_the_services_reach_the_database() -> None:
    postgres, kafka = _labels("dev", "postgres"), _labels("dev", "kafka")
    for app in h.APP_ROLES:
        assert allowed("dev", _labels("dev", app), NAMESPACE, postgres, 5432), app
        assert allowed("dev", _labels("dev", app), NAMESPACE, kafka, 9092), app
    gw = _labels("dev", "gateway")
    assert not allowed("dev", gw, NAMESPACE, postgres, 5432)
    assert not allowed("dev", gw, NAMESPACE, kafka, 9092)
    assert not allowed("dev", {"app": "x"}, "default", postgres, 5432)
    assert allowed("dev", {"app": "keda-operator"}, "keda", kafka, 9092)  # lag queries
    # On EKS the database is RDS: the gateway's egress still cannot leave for it.
    rds = {"external": "rds"}
    assert not allowed("eks", _labels("eks", "gateway"), NAMESPACE, rds, 5432)


def test_eks_version_is_the_validated_version() -> None:
    default = h.cfn("eks.yaml")["Parameters"]["KubernetesVersion"]["Default"]
    assert h.KUBERNETES_VERSION.startswith(default + ".")


def test_on_eks_every_kafka_client_logs_in_to_msk() -> None:
    docs = h.rendered("eks")
    for doc in of_kind("eks", "Deployment"):
        pod = doc["spec"]["template"]["spec"]
        for container in pod["containers"][:1] + (pod.get("initContainers") or []):
            if "--metrics-port" not in (container.get("args") or []) and container.get(
                "args", [""]
            )[0] not in ("serve", "migrate"):
                continue
            secrets = {
                e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
                for e in container.get("env") or []
                if "valueFrom" in e
            }
            for name in ("SHOPSTREAM_KAFKA_SASL_USERNAME", "SHOPSTREAM_KAFKA_SASL_PASSWORD"):
                assert secrets.get(name) == "shopstream-kafka", (
                    f"{doc['metadata']['name']}/{container['name']}: {name}"
                )
    auths = {d["metadata"]["name"] for d in docs if d["kind"] == "TriggerAuthentication"}
    for scaled in of_kind("eks", "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["authenticationRef"]["name"] in auths
            assert (
                trigger["metadata"]["sasl"] == "scram_sha512"
                and trigger["metadata"]["tls"] == "enable"
            )
