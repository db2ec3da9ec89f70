"""Every call one workload makes to another is admitted by the Kubernetes NetworkPolicies.

The calls are derived, not listed: for each Deployment, the modules its command runs (and what they
import from services/ and shopstream/) show which ``*_url`` settings its code reads (a field such as
``product_service_url`` or its derived property ``product_service``); the rendered ConfigMap gives
that URL's host and port, the Service of that name its pods. A policy that refuses a call the code
makes (order-consumer's sync-order recovery calling product-service, say) fails here.
"""

from __future__ import annotations

import ast
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shopstream.config import ENV_PREFIX, Settings
from tests.deploy.helpers import OVERLAYS, ROOT, rendered

Doc = dict[str, Any]
URL_SETTINGS = [f.name for f in fields(Settings) if f.name.endswith("_url")]


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
    return {name for name in URL_SETTINGS if {name, name.removesuffix("_url")} & attributes}


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
    env.update({e["name"]: e["value"] for e in container.get("env") or [] if "value" in e})
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
            if url:
                parts = urlsplit(url)
                found.append((pod, setting, parts.hostname or "", parts.port or 80))
    return found


def verdict(overlay: str, caller: Doc, host: str, port: int) -> str | None:
    """None when the call passes both the callee's ingress and the caller's egress policies."""
    docs = rendered(overlay)
    caller_ns = caller["metadata"]["namespace"]
    caller_labels = caller["spec"]["template"]["metadata"]["labels"]
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
