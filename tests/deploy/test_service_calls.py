"""Every call one workload makes to another is admitted by the Kubernetes NetworkPolicies.

The calls are derived, not listed: for each Deployment, the modules its command runs (and what they
import from services/ and shopstream/) show which ``*_url`` settings its code reads (a field such as
``product_service_url`` or its derived property ``product_service``); the rendered ConfigMap gives
that URL's host and port, the Service of that name its pods. A policy that refuses a call the code
makes (order-consumer's sync-order recovery calling product-service, say) fails here.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shopstream.config import ENV_PREFIX, Settings
from tests.deploy.helpers import GATEWAY_TEMPLATE, OVERLAYS, ROOT, rendered

Doc = dict[str, Any]
URL_SETTINGS = [f.name for f in fields(Settings) if f.name.endswith("_url")]
# properties a URL setting is read through under another name
DERIVED = {"auth_jwks_url": ("jwks_location",)}


def module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


@cache
def imports_of(module: str) -> tuple[str, ...]:
    path = module_file(module)
    if path is None:
        return ()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
            source = ".".join(p for p in (base, node.module or "") if p)
            found.append(source)
            found += [f"{source}.{alias.name}" for alias in node.names]
    return tuple(
        m for m in found if m.split(".")[0] in ("shopstream", "services") and module_file(m)
    )


def closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots if module_file(r)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += imports_of(module)
    return seen


def urls_read(roots: list[str]) -> set[str]:
    """The ``*_url`` settings the code of these modules reads (directly or via a derived property)."""
    attributes = set()
    # shopstream.config defines the settings; reading one happens anywhere else
    for module in closure(roots) - {"shopstream.config"}:
        path = module_file(module)
        assert path is not None
        tree = ast.parse(path.read_text())
        attributes |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return {
        name for name in URL_SETTINGS
        if {name, name.removesuffix("_url"), *DERIVED.get(name, ())} & attributes
    }  # fmt: skip


def entry_modules(args: list[str]) -> list[str]:
    """The modules `shopstream <args>` runs (shopstream_tools/cli.py)."""
    verb, service = args[0], args[1]
    return {
        "serve": [f"services.{service}.entrypoints.app"],
        "consume": [f"services.{service}.entrypoints.consumers"],
        "relay": ["shopstream.outbox", f"services.{service}.entrypoints.relay"],
    }.get(verb, [])


# NetworkPolicy semantics -------------------------------------------------------------------------
def matches(selector: Doc | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, op = labels.get(expr["key"]), expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def peer_matches(peer: Doc, policy_ns: str, ns: str, labels: dict[str, str]) -> bool:
    if "ipBlock" in peer:
        return False  # pod-to-pod traffic is judged by selectors here
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": ns}):
            return False
    elif ns != policy_ns:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], labels)


def port_matches(rule: Doc, port: int, port_names: dict[str, int]) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for item in ports:
        first = item.get("port")
        if first is None:
            return True
        first = port_names.get(first, first) if isinstance(first, str) else first
        if first <= port <= item.get("endPort", first):
            return True
    return False


def allowed(
    docs: tuple[Doc, ...],
    direction: str,
    policy_ns: str,
    pod: dict[str, str],
    peer_ns: str,
    peer: dict[str, str],
    port: int,
    port_names: dict[str, int],
) -> bool:
    """Whether the policies of policy_ns selecting `pod` let traffic in `direction` pass."""
    kind, key = ("Ingress", "from") if direction == "ingress" else ("Egress", "to")
    selecting = [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and d["metadata"].get("namespace") == policy_ns
        and kind in d["spec"].get("policyTypes", ["Ingress"])
        and matches(d["spec"].get("podSelector"), pod)
    ]
    if not selecting:
        return True
    return any(
        port_matches(rule, port, port_names)
        and (not rule.get(key) or any(peer_matches(p, policy_ns, peer_ns, peer) for p in rule[key]))
        for policy in selecting
        for rule in policy["spec"].get(direction) or []
    )


# The calls --------------------------------------------------------------------------------------
def pods(docs: tuple[Doc, ...]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def config_of(docs: tuple[Doc, ...], pod: Doc) -> dict[str, str]:
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    container = pod["spec"]["template"]["spec"]["containers"][0]
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            env.update(maps[source["configMapRef"]["name"]])
    for item in container.get("env") or []:
        ref = (item.get("valueFrom") or {}).get("configMapKeyRef")
        if "value" in item:
            env[item["name"]] = item["value"]
        elif ref:
            env[item["name"]] = maps[ref["name"]][ref["key"]]
    return env


def calls(overlay: str) -> list[tuple[Doc, str, str, int]]:
    """(caller, setting, service host, port) for every URL setting a workload's code reads."""
    docs = rendered(overlay)
    found = []
    for pod in pods(docs):
        args = pod["spec"]["template"]["spec"]["containers"][0].get("args") or []
        if not args or args[0] not in ("serve", "consume", "relay"):
            continue
        env = config_of(docs, pod)
        for setting in sorted(urls_read(entry_modules(args))):
            url = env.get(ENV_PREFIX + setting.upper())
            if "://" not in (url or ""):
                continue  # unset, or a file (the local issuer's JWKS mounted in the pod)
            if setting != "zipkin_url" or env.get("SHOPSTREAM_ZIPKIN_PORT") != "0":
                parts = urlsplit(url)
                default = 443 if parts.scheme == "https" else 80
                found.append((pod, setting, parts.hostname or "", parts.port or default))
        # Every process (and its migrate init container) uses its database and Kafka.
        settings = Settings.from_env(env)
        found.append((pod, "postgres", settings.postgres_host, settings.postgres_port))
        for server in settings.kafka_servers.split(","):
            host, _, port = server.rpartition(":")
            found.append((pod, "kafka", host, int(port)))
    for pod in pods(docs):
        if pod["metadata"]["name"] == "gateway":
            # nginx's upstreams, as the image renders its template (deploy/docker/gateway)
            env = config_of(docs, pod)
            template = GATEWAY_TEMPLATE.read_text()
            for host, variable in re.findall(r"server (\w+):\$\{(\w+)\}", template):
                found.append((pod, "upstream", host, int(env[variable])))
        if pod["metadata"]["name"] == "postgres-exporter":
            env = config_of(docs, pod)
            found.append((pod, "postgres", env["PG_HOST"], int(env["PG_PORT"])))
    return found


def is_external(host: str) -> bool:
    """An address outside the cluster (RDS, MSK): not a Service name in any form DNS resolves."""
    return "." in host and not host.endswith((".svc", ".svc.cluster.local")) and host.count(".") > 1


def verdict(overlay: str, caller: Doc, host: str, port: int) -> str | None:
    """None when the call passes both the callee's ingress and the caller's egress policies."""
    docs = rendered(overlay)
    caller_ns = caller["metadata"]["namespace"]
    caller_labels = caller["spec"]["template"]["metadata"]["labels"]
    if is_external(host):
        if external_egress(docs, caller_ns, caller_labels, port):
            return None
        return f"{caller['metadata']['name']}'s egress refuses {host}:{port}"
    name, _, rest = host.partition(".")
    ns = rest.split(".")[0] if rest else caller_ns
    services = [
        d
        for d in docs
        if d["kind"] == "Service"
        and d["metadata"]["name"] == name
        and d["metadata"].get("namespace") == ns
    ]
    if not services:
        return f"no Service {name} in namespace {ns}"
    service = services[0]
    targets = [
        p
        for p in pods(docs)
        if p["metadata"]["namespace"] == ns
        and matches(
            {"matchLabels": service["spec"]["selector"]},
            p["spec"]["template"]["metadata"]["labels"],
        )
    ]
    if not targets:
        return f"Service {ns}/{name} selects no pods"
    entry = next((p for p in service["spec"]["ports"] if p["port"] == port), None)
    if entry is None:
        return f"Service {ns}/{name} has no port {port}"
    problems = []
    for target in targets:
        labels = target["spec"]["template"]["metadata"]["labels"]
        names = {
            p["name"]: p["containerPort"]
            for c in target["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports") or []
            if "name" in p
        }
        target_port = entry.get("targetPort", port)
        target_port = names[target_port] if isinstance(target_port, str) else target_port
        if not allowed(docs, "ingress", ns, labels, caller_ns, caller_labels, target_port, names):
            problems.append(f"{ns}/{target['metadata']['name']} ingress refuses it")
        if not allowed(docs, "egress", caller_ns, caller_labels, ns, labels, target_port, names):
            problems.append(f"{caller['metadata']['name']}'s egress refuses it")
    return "; ".join(problems) or None


def test_the_calls_are_derived_from_the_code() -> None:
    # The derivation itself: if it found nothing, every policy would pass vacuously.
    assert "product_service_url" in urls_read(entry_modules(["consume", "order"]))
    assert "product_service_url" in urls_read(entry_modules(["serve", "order"]))
    assert "product_service_url" not in urls_read(entry_modules(["serve", "product"]))
    callers = {(c["metadata"]["name"], s) for c, s, _, _ in calls("dev")}
    assert {("order", "product_service_url"), ("order-consumer", "product_service_url")} <= callers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_call_is_admitted_by_the_network_policies(overlay: str) -> None:
    refused = [
        f"{caller['metadata']['name']} -> {host}:{port} ({setting}): {problem}"
        for caller, setting, host, port in calls(overlay)
        if (problem := verdict(overlay, caller, host, port))
    ]
    assert not refused, "\n".join(refused)


def test_the_check_notices_a_refused_call() -> None:
    docs = rendered("dev")
    gateway = next(p for p in pods(docs) if p["metadata"]["name"] == "gateway")
    # the gateway's egress admits only the APIs and DNS, and Kafka admits only the app tier
    problem = verdict("dev", gateway, "kafka", 9092)
    assert problem and "kafka ingress refuses it" in problem and "egress refuses it" in problem
    assert verdict("dev", gateway, "product", 8081) is None


# Egress: every call passes, and every egress rule serves a call ---------------------------------
DNS = ("kube-system", {"k8s-app": "kube-dns"}, 53)
EXTERNAL = "<outside the cluster>"


def egress_policies(docs: tuple[Doc, ...], ns: str, labels: dict[str, str]) -> list[Doc]:
    return [
        d
        for d in docs
        if d["kind"] == "NetworkPolicy"
        and d["metadata"].get("namespace") == ns
        and "Egress" in d["spec"].get("policyTypes", [])
        and matches(d["spec"].get("podSelector"), labels)
    ]


def external_egress(docs: tuple[Doc, ...], ns: str, labels: dict[str, str], port: int) -> bool:
    """Whether an egress rule lets the pod reach an address outside the cluster on this port."""
    policies = egress_policies(docs, ns, labels)
    return not policies or any(
        port_matches(rule, port, {})
        and (not rule.get("to") or any("ipBlock" in peer for peer in rule["to"]))
        for policy in policies
        for rule in policy["spec"].get("egress") or []
    )


def destinations(overlay: str, caller: Doc) -> list[tuple[str, dict[str, str], int]]:
    """(namespace, pod labels, port) of everything the caller's code calls, DNS included."""
    docs = rendered(overlay)
    found = [DNS]
    for who, _setting, host, port in calls(overlay):
        if who is not caller:
            continue
        if is_external(host):
            found.append((EXTERNAL, {}, port))
            continue
        name, _, rest = host.partition(".")
        ns = rest.split(".")[0] if rest else caller["metadata"]["namespace"]
        (service,) = [
            d for d in docs
            if d["kind"] == "Service" and d["metadata"]["name"] == name
            and d["metadata"].get("namespace") == ns
        ]  # fmt: skip
        entry = next(p for p in service["spec"]["ports"] if p["port"] == port)
        for target in pods(docs):
            labels = target["spec"]["template"]["metadata"]["labels"]
            if target["metadata"]["namespace"] == ns and matches(
                {"matchLabels": service["spec"]["selector"]}, labels
            ):
                names = {
                    p["name"]: p["containerPort"]
                    for c in target["spec"]["template"]["spec"]["containers"]
                    for p in c.get("ports") or []
                    if "name" in p
                }
                target_port = entry.get("targetPort", port)
                found.append((ns, labels, names.get(target_port, target_port)))
    return found


def unused_egress(overlay: str, caller: Doc) -> list[str]:
    """Egress rules (peer, port) of the caller's policies that no call of its code needs."""
    docs = rendered(overlay)
    ns = caller["metadata"]["namespace"]
    labels = caller["spec"]["template"]["metadata"]["labels"]
    wanted = destinations(overlay, caller)
    unused = []
    for policy in egress_policies(docs, ns, labels):
        for rule in policy["spec"].get("egress") or []:
            for port in rule.get("ports") or [{}]:
                for peer in rule.get("to") or [{}]:
                    served = any(
                        port_matches({"ports": [port]} if port else {}, dest_port, {})
                        and (
                            ("ipBlock" in peer) == (dest_ns == EXTERNAL)
                            and (dest_ns == EXTERNAL or peer_matches(peer, ns, dest_ns, dest))
                        )
                        for dest_ns, dest, dest_port in wanted
                    )
                    if not served:
                        unused.append(f"{policy['metadata']['name']}: {peer} port {port}")
    return unused


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_is_limited_to_the_calls_the_code_makes(overlay: str) -> None:
    docs = rendered(overlay)
    restricted = [
        p for p in pods(docs)
        if p["metadata"]["namespace"] == "shopstream"
        and egress_policies(docs, "shopstream", p["spec"]["template"]["metadata"]["labels"])
    ]  # fmt: skip
    names = {p["metadata"]["name"] for p in restricted}
    # the app tier, the gateway and the postgres exporter have their egress restricted
    assert {"product", "order", "order-consumer", "gateway", "postgres-exporter"} <= names
    assert {"product-relay", "order-relay", "product-consumer"} <= names
    extra = [f"{p['metadata']['name']}: {u}" for p in restricted for u in unused_egress(overlay, p)]
    assert not extra, "egress no call needs:\n" + "\n".join(extra)


def test_the_egress_check_notices_a_rule_no_call_needs() -> None:
    docs = rendered("dev")
    product = next(p for p in pods(docs) if p["metadata"]["name"] == "product")
    # product-service calls no product-service: the callers' rule must not select it
    assert not any(
        d["metadata"]["name"] == "product-callers-egress"
        for d in egress_policies(
            docs, "shopstream", product["spec"]["template"]["metadata"]["labels"]
        )
    )
    order = next(p for p in pods(docs) if p["metadata"]["name"] == "order")
    assert unused_egress("dev", order) == []
    relay = next(p for p in pods(docs) if p["metadata"]["name"] == "product-relay")
    wanted = destinations("dev", relay)
    assert not any(port == 8081 for _ns, _labels, port in wanted), "a relay calls no API"
    assert any(port == 5432 for _ns, _labels, port in wanted)
    assert any(port == 9092 for _ns, _labels, port in wanted)
    # on EKS the data tier is outside: only the private subnets' ipBlocks on 5432 and 9096 serve it
    eks = rendered("eks")
    # (product's consumer: order's loads the token checks, whose JWKS is on the internet)
    consumer = next(p for p in pods(eks) if p["metadata"]["name"] == "product-consumer")
    assert {port for ns, _l, port in destinations("eks", consumer) if ns == EXTERNAL} == {
        5432,
        9096,
    }
    assert (
        verdict("eks", consumer, "shopstream-db.example.eu-west-1.rds.amazonaws.com", 5432) is None
    )
    assert verdict("eks", consumer, "example.com", 443), "the internet is refused"
    order = next(p for p in pods(eks) if p["metadata"]["name"] == "order")
    assert verdict("eks", order, "cognito-idp.eu-west-1.amazonaws.com", 443) is None
