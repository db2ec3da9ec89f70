"""One configuration everywhere: compose, Kubernetes and ECS set the same settings, no others.

Every name ``Settings.env_names()`` lists must be set by each deployment or appear in the allow-list
below with the reason the deployment takes the default. No deployment may set a SHOPSTREAM_* name
that Settings does not know. Ports, health paths, routes and commands agree across deployments.
"""

from __future__ import annotations

import re

import pytest

from shopstream.config import Settings
from shopstream_tools.runtime import gateway_routes
from tests.deploy import helpers as h

LOCAL_ONLY = {
    "SHOPSTREAM_INSTANCE_PORT_STEP": "local `up` puts instance n on port + (n-1)*step; containers "
    "all listen on the same port and scale by replicas",
    "SHOPSTREAM_PRODUCT_INSTANCES": "instances started by local `up`; replicas come from the "
    "autoscaler (HPA, ECS) or `--scale` (compose)",
    "SHOPSTREAM_ORDER_INSTANCES": "as SHOPSTREAM_PRODUCT_INSTANCES",
    "SHOPSTREAM_CONSOLE_PORT": "the local operator console stands in for a Kafka UI; containers "
    "run kafbat/kafka-ui on 8090 instead",
    "SHOPSTREAM_KAFKA_PORT": "port of the broker local `up` starts; deployments give "
    "SHOPSTREAM_KAFKA_BOOTSTRAP, which takes precedence",
    "SHOPSTREAM_KAFKA_CONTROLLER_PORT": "controller port of the local broker only",
    "SHOPSTREAM_KAFKA_HEAP": "heap of the local broker only; the Kafka containers and MSK size "
    "their own",
    "SHOPSTREAM_KAFKA_BROKERS": "brokers local `up` starts (3 in the HA profile); deployments "
    "give SHOPSTREAM_KAFKA_BOOTSTRAP",
    "SHOPSTREAM_KAFKA_BROKER_PORT_STEP": "ports of the local brokers only",
    "SHOPSTREAM_POSTGRES_NODES": "PostgreSQL servers local `up` starts (2 in the HA profile, under "
    "Patroni); deployments name their server (RDS Multi-AZ fails over behind one host name)",
    "SHOPSTREAM_POSTGRES_NODE_PORT_STEP": "ports of the local PostgreSQL nodes only",
    "SHOPSTREAM_DB_FAILOVER_SECONDS": "deployments take the default (503 at once): an RDS Multi-AZ "
    "failover takes 60-120 s, longer than a client's request should wait; the local HA profile's "
    "Patroni pair fails over in seconds",
    "SHOPSTREAM_INSTANCE_ID": "the image entrypoint sets it from the host name (pod name, task "
    "host, container id) so every replica has its own (deploy/docker/entrypoint.sh)",
    "SHOPSTREAM_PRODUCT_DATABASE_URL": "derived from SHOPSTREAM_POSTGRES_*, so the password stays "
    "in its secret instead of a URL",
    "SHOPSTREAM_ORDER_DATABASE_URL": "as SHOPSTREAM_PRODUCT_DATABASE_URL",
    # The local platform's observability processes (shopstream_tools/runtime/observability.py); the
    # deployments run their own Prometheus, exporters and Zipkin containers or managed services.
    **{
        f"SHOPSTREAM_{name}": "a process local `up` starts; deployments run their own"
        for name in (
            "PROMETHEUS_PORT",
            "PROMETHEUS_SCRAPE_INTERVAL",
            "PROMETHEUS_RETENTION",
            "ALERTMANAGER_PORT",
            "NODE_EXPORTER_PORT",
            "NGINX_EXPORTER_PORT",
            "POSTGRES_EXPORTER_PORT",
            "KAFKA_METRICS_PORT",
            "ZIPKIN_HEAP",
        )
    },
    "SHOPSTREAM_TRACING_SAMPLE_RATIO": "deployments take the measured default ratio",
    "SHOPSTREAM_GATEWAY_BALANCING": "the gateway's default (least_conn) everywhere; the lab sets "
    "others to compare them (ECS: the ALB balances, no nginx)",
}
NO_CLOUDWATCH = {
    "SHOPSTREAM_AWS_EMF_NAMESPACE": "no CloudWatch here: Prometheus scrapes the metrics (compose's, "
    "deploy/k8s/monitoring on Kubernetes, EKS included); ECS sets "
    "it to the namespace its alarms and lag policies read (MetricsNamespace)",
}
NO_GATEWAY = {
    name: "no nginx on ECS: the ALB routes by path; WAF rules limit clients "
    "(RateLimitPer5Minutes), the methods per path and the body (64k, aws/ecs.yaml); services "
    "check content types themselves"
    for name in (
        "SHOPSTREAM_GATEWAY_PORT",
        "SHOPSTREAM_GATEWAY_STATUS_PORT",
        "SHOPSTREAM_GATEWAY_RATE_LIMIT",
        "SHOPSTREAM_GATEWAY_RATE_BURST",
        "SHOPSTREAM_GATEWAY_BODY_LIMIT",
        "SHOPSTREAM_GATEWAY_ADDRESS_RATE_LIMIT",
        "SHOPSTREAM_GATEWAY_ROUTE_CONCURRENCY",
    )
}
GATEWAY_EDGE = {
    "SHOPSTREAM_GATEWAY_HEADER_LIMIT": "the container gateway's header limit is fixed at 8k in "
    "its template (ECS: the ALB's own limits)",
    "SHOPSTREAM_GATEWAY_TLS_NAMES": "names of the certificate the local platform's CA issues; "
    "a container gateway serves a mounted certificate (compose: `compose up` issues it; "
    "Kubernetes: the TLS Secret shopstream-gateway-tls)",
}
# ECS has no nginx: the ALB terminates TLS with the ACM certificate of CertificateArn and
# redirects port 80 to 443 (tests/deploy/test_gateway_tls.py).
ALB_TLS = {
    f"SHOPSTREAM_GATEWAY_{name}": "no nginx on ECS: the ALB's HTTPS listener (CertificateArn) "
    "terminates TLS and its port 80 listener redirects"
    for name in ("TLS_PORT", "TLS_CERT", "TLS_KEY", "HTTPS_REDIRECT_PORT")
}
PLAINTEXT_BROKER = {
    f"SHOPSTREAM_KAFKA_{name}": "the stack's own broker speaks plaintext on its private network"
    for name in (
        "SECURITY_PROTOCOL",
        "SASL_MECHANISM",
        "SASL_USERNAME",
        "SASL_PASSWORD",
        "CA_LOCATION",
    )
}
# Identity (docs/security.md). Compose runs the local issuer: `shopstream compose up` makes its keys
# and mounts the public ones; the other settings are the local issuer's defaults.
LOCAL_ISSUER = {
    f"SHOPSTREAM_{name}": "the local issuer's default, which the compose stack runs"
    for name in ("AUTH_AUDIENCE", "AUTH_LEEWAY_SECONDS", "AUTH_CACHE_ENTRIES", "AUTH_ADMIN_CLAIM")
}
LOCAL_ISSUER["SHOPSTREAM_SERVICE_TOKEN"] = (
    "compose mounts the credential as a file (SHOPSTREAM_SERVICE_TOKEN_FILE), which compose up makes"
)
# Kubernetes and ECS hand the service credential over as a variable from their secret store.
CREDENTIAL_FROM_SECRET = {
    "SHOPSTREAM_SERVICE_TOKEN_FILE": "the credential comes from a secret as SHOPSTREAM_SERVICE_TOKEN"
}
PLAINTEXT_DATABASE = {
    f"SHOPSTREAM_POSTGRES_{name}": "the stack's own PostgreSQL serves no TLS on its private network"
    for name in ("SSLMODE", "SSLROOTCERT")
}
SYSTEM_CAS = {
    "SHOPSTREAM_KAFKA_CA_LOCATION": "MSK's certificates chain to Amazon's public CAs, which the image trusts",
}
# Per deployment: the settings it knowingly leaves at their default, and why.
KNOWINGLY_DEFAULT: dict[str, dict[str, str]] = {
    "compose": {
        **LOCAL_ONLY,
        **GATEWAY_EDGE,
        **NO_CLOUDWATCH,
        **PLAINTEXT_BROKER,
        **PLAINTEXT_DATABASE,
        **LOCAL_ISSUER,
    },
    "k8s-dev": {
        **LOCAL_ONLY,
        **GATEWAY_EDGE,
        **NO_CLOUDWATCH,
        **PLAINTEXT_BROKER,
        **PLAINTEXT_DATABASE,
        **CREDENTIAL_FROM_SECRET,
    },
    "k8s-eks": {**LOCAL_ONLY, **GATEWAY_EDGE, **NO_CLOUDWATCH, **SYSTEM_CAS, **CREDENTIAL_FROM_SECRET},
    "ecs": {**LOCAL_ONLY, **GATEWAY_EDGE, **NO_GATEWAY, **ALB_TLS, **SYSTEM_CAS, **CREDENTIAL_FROM_SECRET},
}


# Settings whose value belongs to the environment (addresses, credentials, sizes of the cluster).
PER_ENVIRONMENT = {
    "SHOPSTREAM_DATA_DIR",
    "SHOPSTREAM_LOG_LEVEL",
    "SHOPSTREAM_POSTGRES_HOST",
    "SHOPSTREAM_POSTGRES_PORT",
    "SHOPSTREAM_POSTGRES_USER",
    "SHOPSTREAM_POSTGRES_PASSWORD",
    "SHOPSTREAM_POSTGRES_ADMIN_USER",
    "SHOPSTREAM_POSTGRES_ADMIN_PASSWORD",
    "SHOPSTREAM_POSTGRES_SSLMODE",
    "SHOPSTREAM_POSTGRES_SSLROOTCERT",
    "SHOPSTREAM_KAFKA_BOOTSTRAP",
    "SHOPSTREAM_KAFKA_SECURITY_PROTOCOL",
    "SHOPSTREAM_KAFKA_SASL_MECHANISM",
    "SHOPSTREAM_KAFKA_SASL_USERNAME",
    "SHOPSTREAM_KAFKA_SASL_PASSWORD",
    "SHOPSTREAM_TOPIC_PARTITIONS",
    "SHOPSTREAM_TOPIC_REPLICATION",
    "SHOPSTREAM_PRODUCT_SERVICE_URL",
    "SHOPSTREAM_AWS_EMF_NAMESPACE",
    # Tracing is explicit everywhere: a Zipkin's URL, or port 0 for off (test_observability.py).
    "SHOPSTREAM_ZIPKIN_URL",
    "SHOPSTREAM_ZIPKIN_PORT",
    # who issues the tokens and where its keys and the service credential are
    "SHOPSTREAM_AUTH_ISSUER",
    "SHOPSTREAM_AUTH_JWKS_URL",
    "SHOPSTREAM_SERVICE_TOKEN_FILE",
    "SHOPSTREAM_SERVICE_TOKEN",
    # what the provider puts in its tokens: the audience (Cognito: the app client id of its ID
    # tokens) and the claim that lists the caller's groups
    "SHOPSTREAM_AUTH_AUDIENCE",
    "SHOPSTREAM_AUTH_ADMIN_CLAIM",
    # where the gateway's certificate is, the port it listens on and the one clients reach
    "SHOPSTREAM_GATEWAY_TLS_PORT",
    "SHOPSTREAM_GATEWAY_TLS_CERT",
    "SHOPSTREAM_GATEWAY_TLS_KEY",
    "SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT",
}
# A tuning setting a deployment sets to something other than the code's default: (deployment,
# name) -> why. Empty: every deployment runs the measured defaults, spelled out.
DELIBERATE_OVERRIDES: dict[tuple[str, str], str] = {}


def names_set(deployment: str) -> set[str]:
    return {name for w in h.workloads(deployment) for name in w.env}


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_every_setting_is_set_or_knowingly_defaulted(deployment: str) -> None:
    missing = h.settings_names() - names_set(deployment) - set(KNOWINGLY_DEFAULT[deployment])
    assert not missing, (
        f"{deployment} neither sets nor knowingly defaults {sorted(missing)}: set them in the "
        "deployment, or add them to KNOWINGLY_DEFAULT with the reason"
    )


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_no_deployment_sets_a_setting_the_code_does_not_read(deployment: str) -> None:
    unknown = names_set(deployment) - h.settings_names()
    assert not unknown, f"{deployment} sets {sorted(unknown)}, which Settings does not read"


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_the_allow_list_is_honest(deployment: str) -> None:
    allowed = set(KNOWINGLY_DEFAULT[deployment])
    assert allowed <= h.settings_names(), (
        f"stale allow-list: {sorted(allowed - h.settings_names())}"
    )
    contradicted = allowed & names_set(deployment)
    assert not contradicted, f"{deployment} sets {sorted(contradicted)} yet allow-lists them"


# Only the migrate containers log in as the admin (they create the roles and databases and run the
# migrations as the owner roles); a service process never sees its password.
MIGRATE_ONLY = {"SHOPSTREAM_POSTGRES_ADMIN_PASSWORD"}


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_every_python_container_gets_the_same_settings(deployment: str) -> None:
    apps = [w for w in h.workloads(deployment) if w.is_app]
    roles = {w.name for w in apps}
    assert set(h.APP_ROLES) <= roles, f"{deployment} lacks {sorted(set(h.APP_ROLES) - roles)}"
    reference = set(apps[0].env) - MIGRATE_ONLY
    for w in apps:
        expected = reference | MIGRATE_ONLY if w.name == "migrate" else reference
        assert set(w.env) == expected, (
            f"{deployment}: {w.name} sets {sorted(set(w.env) ^ expected)} differently from "
            f"{apps[0].name}"
        )
        if deployment != "compose":
            secret = {"SHOPSTREAM_POSTGRES_PASSWORD", "SHOPSTREAM_SERVICE_TOKEN"}
            for name in secret | (set(w.env) & MIGRATE_ONLY):
                assert w.env[name] == "<secret>", f"{deployment}: {w.name}: {name} from a secret"
    if deployment == "compose":  # no secret store: the passwords come from the shell or .env
        raw = h.COMPOSE_FILE.read_text()
        for variable in ("PRODUCT_DB_PASSWORD", "ORDER_DB_PASSWORD"):
            assert f"SHOPSTREAM_POSTGRES_PASSWORD: ${{{variable}:-" in raw
        assert "SHOPSTREAM_POSTGRES_ADMIN_PASSWORD: ${POSTGRES_PASSWORD:-" in raw


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_each_service_logs_in_as_its_own_database_role(deployment: str) -> None:
    """product's processes as product_service, order's as order_service, each with its own
    secret; never the admin, whose password only the migrate containers get."""
    apps = [w for w in h.workloads(deployment) if w.is_app]
    for w in apps:
        user = w.env["SHOPSTREAM_POSTGRES_USER"]
        if w.name != "migrate":
            assert user == f"{w.name.split('-')[0]}_service", f"{deployment}: {w.name} as {user}"
    migrating = {w.env["SHOPSTREAM_POSTGRES_USER"] for w in apps if w.name == "migrate"}
    assert migrating == {"product_service", "order_service"}, f"{deployment}: {migrating}"
    assert all(w.env.get("SHOPSTREAM_POSTGRES_ADMIN_USER") for w in apps)
    if deployment == "ecs":  # a secret per service role, and the master's for migrate only
        resources = h.cfn("ecs.yaml")["Resources"]
        tasks = [r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
        for task in tasks:
            service = "Product" if "product" in str(task["Properties"]["Family"]) else "Order"
            for container in task["Properties"]["ContainerDefinitions"]:
                secrets = {s["Name"]: str(s["ValueFrom"]) for s in container.get("Secrets") or []}
                assert f"{service}DbSecretArn" in secrets["SHOPSTREAM_POSTGRES_PASSWORD"]
                if container["Name"] == "migrate":
                    assert "-DbSecretArn" in secrets["SHOPSTREAM_POSTGRES_ADMIN_PASSWORD"]


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_literal_values_parse_as_settings(deployment: str) -> None:
    for w in h.workloads(deployment):
        literal = {k: v for k, v in w.env.items() if not v.startswith("<")}
        Settings.from_env(literal)  # raises on a value of the wrong type


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_tuning_values_are_the_code_defaults(deployment: str) -> None:
    """A deployment spells out tuning settings, so a default changed in code must change here too."""
    defaults = Settings()
    parameters = h.cfn("ecs.yaml")["Parameters"] if deployment == "ecs" else {}
    for w in h.workloads(deployment):
        for name, value in w.env.items():
            if name in PER_ENVIRONMENT or (deployment, name) in DELIBERATE_OVERRIDES:
                continue
            ref = re.fullmatch(r"<Ref:(\w+)>", value)
            if ref:
                value = str(parameters[ref.group(1)]["Default"])
            field = name.removeprefix("SHOPSTREAM_").lower()
            actual = getattr(Settings.from_env({name: value}), field)
            assert actual == getattr(defaults, field), (
                f"{deployment}: {w.name} sets {name}={value}, the code's default is "
                f"{getattr(defaults, field)!r}: follow the code, or list it in DELIBERATE_OVERRIDES"
            )


@pytest.mark.parametrize("deployment", h.DEPLOYMENT_NAMES)
def test_ports_agree_with_the_settings_and_each_other(deployment: str) -> None:
    by_role = {w.name: w for w in h.workloads(deployment) if w.name != "migrate"}
    for service, port in h.HTTP_PORTS.items():
        w = by_role[service]
        assert w.env[f"SHOPSTREAM_{service.upper()}_PORT"] == str(port)
        assert port in w.ports, f"{deployment}: {service} does not expose {port}"
        assert (port, h.LIVENESS_PATH) in w.liveness, f"{deployment}: {service} liveness"
        assert w.command == h.command_of(service)
    for w in h.workloads(deployment):
        if "SHOPSTREAM_PRODUCT_SERVICE_URL" in w.env:
            url = w.env["SHOPSTREAM_PRODUCT_SERVICE_URL"].rstrip("/")
            assert url.endswith(f":{h.HTTP_PORTS['product']}"), f"{deployment}: {url}"
    for role, port in h.METRICS_PORTS.items():
        w = by_role[role]
        assert w.command == h.command_of(role), f"{deployment}: {role} runs {w.command}"
        assert (port, h.METRICS_PATH) in w.liveness, f"{deployment}: {role} health check"
        if deployment != "compose":  # compose needs no declared port between containers
            assert port in w.ports
    migrate = [w for w in h.workloads(deployment) if w.name == "migrate"]
    assert migrate and all(w.command == ["migrate"] for w in migrate)
    if "gateway" in by_role:
        gw = by_role["gateway"]
        assert gw.env["SHOPSTREAM_GATEWAY_PORT"] == str(h.GATEWAY_PORT)
        assert gw.env["SHOPSTREAM_GATEWAY_STATUS_PORT"] == str(h.GATEWAY_STATUS_PORT)
        assert {h.GATEWAY_PORT, h.GATEWAY_STATUS_PORT} <= set(gw.ports)


def test_the_contract_ports_are_the_settings_defaults() -> None:
    defaults = Settings()
    assert {s: defaults.service_port(s) for s in h.HTTP_PORTS} == h.HTTP_PORTS
    assert defaults.gateway_port == h.GATEWAY_PORT
    assert defaults.gateway_status_port == h.GATEWAY_STATUS_PORT


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_readiness_and_services_match_the_ports(overlay: str) -> None:
    docs = h.rendered(overlay)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for service, port in h.HTTP_PORTS.items():
        (w,) = [w for w in h.k8s_workloads(overlay) if w.name == service]
        assert w.readiness == [(port, h.READINESS_PATH)]
        assert [p["port"] for p in services[service]["spec"]["ports"]] == [port]
    gateway_ports = [p["port"] for p in services["gateway"]["spec"]["ports"]]
    assert gateway_ports == [h.GATEWAY_PORT, 443]  # HTTPS: tests/deploy/test_gateway_tls.py


def test_load_balancer_target_groups_match_ports_and_readiness() -> None:
    resources = h.cfn("ecs.yaml")["Resources"]
    for service, port in h.HTTP_PORTS.items():
        tg = resources[f"{service.capitalize()}TargetGroup"]["Properties"]
        assert tg["Port"] == port
        assert tg["HealthCheckPath"] == h.READINESS_PATH
        assert tg["HealthCheckPort"] == "traffic-port"
        svc = resources[f"{service.capitalize()}Service"]["Properties"]
        (lb,) = svc["LoadBalancers"]
        assert (lb["ContainerName"], lb["ContainerPort"]) == (service, port)


def test_routes_agree_between_local_gateway_container_gateway_and_load_balancer() -> None:
    prefixes = {route.service: route.prefix for route in gateway_routes.ROUTES}
    assert set(prefixes) == set(h.HTTP_PORTS)
    template = h.GATEWAY_TEMPLATE.read_text()
    template_routes = set(re.findall(r"location ~ \^(/[a-z]+)\(\?:/\|\$\)", template))
    assert template_routes == set(prefixes.values())
    resources = h.cfn("ecs.yaml")["Resources"]
    alb_routes = {}
    for res in resources.values():
        if res["Type"] != "AWS::ElasticLoadBalancingV2::ListenerRule":
            continue
        (condition,) = res["Properties"]["Conditions"]
        (action,) = res["Properties"]["Actions"]
        target = action["TargetGroupArn"]["Ref"].removesuffix("TargetGroup").lower()
        alb_routes[target] = sorted(condition["PathPatternConfig"]["Values"])
    assert alb_routes == {s: sorted([p, f"{p}/*"]) for s, p in prefixes.items()}


def test_prometheus_in_compose_scrapes_the_ports_the_containers_use() -> None:
    import yaml

    config = yaml.safe_load((h.DOCKER / "prometheus" / "prometheus.yml").read_text())
    scraped = {
        job["job_name"]: job["dns_sd_configs"][0]["port"]
        for job in config["scrape_configs"]
        if "dns_sd_configs" in job
    }
    assert scraped == {**h.HTTP_PORTS, **h.METRICS_PORTS}
    compose_services = set(h.compose_config()["services"])
    assert set(scraped) <= compose_services


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_scrape_annotations_match_the_ports(overlay: str) -> None:
    expected = {**h.HTTP_PORTS, **h.METRICS_PORTS}
    for doc in h.rendered(overlay):
        name = doc["metadata"]["name"]
        if doc["kind"] == "Deployment" and name in expected:
            annotations = doc["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(expected[name])
            assert annotations["prometheus.io/path"] == h.METRICS_PATH
