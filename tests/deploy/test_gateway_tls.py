"""TLS at the edge of every deployment, by configuration (docs/security.md#gateway-edge).

Compose and Kubernetes run the gateway image, which terminates TLS with a mounted certificate
(deploy/docker/gateway/tls.sh, run for real in test_gateway_template.py); ECS has no nginx, its ALB
terminates TLS with the ACM certificate named by CertificateArn. Neither cloud runs here, so these
tests hold the files to what the image and the services expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shopstream_tools.compose import identity, stack
from tests.deploy import helpers as h

SECRET = "shopstream-gateway-tls"


def _gateway_pod(overlay: str) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = h.rendered(overlay)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gateway"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "gateway"]
    return pod, container


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_gateway_serves_the_tls_secret_on_its_https_port(overlay: str) -> None:
    pod, container = _gateway_pod(overlay)
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert env["SHOPSTREAM_GATEWAY_TLS_PORT"] == str(ports["https"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    for setting, key in (("SHOPSTREAM_GATEWAY_TLS_CERT", "tls.crt"), ("SHOPSTREAM_GATEWAY_TLS_KEY", "tls.key")):
        path = Path(str(env[setting]))
        assert path.name == key, f"{setting}: a kubernetes.io/tls Secret's key is {key}"
        mount = mounts[str(path.parent)]
        assert mount.get("readOnly") is True
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == SECRET
        assert secret["defaultMode"] & 0o007 == 0, "the key is not world-readable"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 101


@pytest.mark.parametrize("overlay", h.OVERLAYS)
def test_kubernetes_service_and_policy_let_https_in(overlay: str) -> None:
    docs = h.rendered(overlay)
    (service,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "gateway"]
    https = [p for p in service["spec"]["ports"] if p["name"] == "https"]
    assert https == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "gateway-ingress"]
    from_anywhere = [rule for rule in policy["spec"]["ingress"] if "from" not in rule]
    open_ports = {p["port"] for rule in from_anywhere for p in rule["ports"]}
    _, container = _gateway_pod(overlay)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {ports["http"], ports["https"]} <= open_ports
    # TLS ends in nginx: a load balancer in front passes TCP through, never terminates it again
    annotations = service["metadata"].get("annotations") or {}
    assert not any("ssl-cert" in name for name in annotations), annotations


@pytest.mark.parametrize(("overlay", "redirect"), [("dev", "0"), ("eks", "443")])
def test_plain_http_is_served_on_dev_and_redirected_to_the_load_balancers_https_on_eks(
    overlay: str, redirect: str
) -> None:
    _, container = _gateway_pod(overlay)
    env = {e["name"]: e.get("value") for e in container.get("env") or []}
    assert env["SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT"] == redirect


def test_compose_gateway_serves_the_mounted_certificate_on_its_published_https_port() -> None:
    gateway = h.compose_config()["services"]["gateway"]
    env = gateway["environment"]
    published = {int(p["target"]): int(p["published"]) for p in gateway["ports"]}
    tls_port = int(env["SHOPSTREAM_GATEWAY_TLS_PORT"])
    assert published[tls_port] == stack.HOST_PORTS["GATEWAY_TLS_HOST_PORT"][0]
    (mount,) = [v for v in gateway["volumes"] if v["target"] == "/etc/nginx/tls"]
    assert mount["type"] == "bind" and mount.get("read_only") is True
    assert mount["source"].endswith("data-containers/shopstream/gateway-tls")
    for setting in ("SHOPSTREAM_GATEWAY_TLS_CERT", "SHOPSTREAM_GATEWAY_TLS_KEY"):
        assert Path(env[setting]).parent == Path("/etc/nginx/tls")
    assert env["SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT"] == "0"  # HTTP kept unless asked


def test_compose_up_issues_the_certificate_the_gateway_reads(tmp_path: Path) -> None:
    home = tmp_path / "stack"
    identity.prepare(home)
    folder = identity.tls_dir(home)
    cert = x509.load_pem_x509_certificate((folder / "gateway.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    assert cert.issuer == ca.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "gateway"} <= set(san.get_values_for_type(x509.DNSName))
    assert (folder / "gateway.key").stat().st_mode & 0o004, "nginx (uid 101) reads the key"
    assert home.stat().st_mode & 0o077 == 0, "...only through the stack's private folder"
    assert not (folder / "ca.key").exists(), "the CA's key stays out of the mounted folder"
    assert (home / "gateway-ca" / "ca.key").stat().st_mode & 0o077 == 0
    identity.prepare(home)  # a second `compose up` keeps what is still valid
    assert (folder / "gateway.crt").read_bytes() == cert.public_bytes(serialization.Encoding.PEM)


def test_ecs_alb_terminates_tls_with_the_configured_certificate_and_redirects_http() -> None:
    template = h.cfn("ecs.yaml")
    parameter = template["Parameters"]["CertificateArn"]
    assert parameter["Default"] == ""  # no certificate: HTTP on 80 only, said in its description
    resources = template["Resources"]
    listener = resources["Listener"]["Properties"]
    assert listener["Protocol"] == {"Fn::If": ["HasCertificate", "HTTPS", "HTTP"]}
    assert listener["Port"] == {"Fn::If": ["HasCertificate", 443, 80]}
    assert listener["Certificates"]["Fn::If"][1] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert listener["SslPolicy"]["Fn::If"][1].startswith("ELBSecurityPolicy-TLS13-")
    redirect = resources["HttpRedirectListener"]
    assert redirect["Condition"] == "HasCertificate"
    assert redirect["Properties"]["Port"] == 80
    (action,) = redirect["Properties"]["DefaultActions"]
    assert action["Type"] == "redirect"
    assert action["RedirectConfig"]["Protocol"] == "HTTPS" and action["RedirectConfig"]["Port"] == "443"
    assert template["Conditions"]["HasCertificate"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]
    }
    ingress = h.cfn("network.yaml")["Resources"]["LoadBalancerSecurityGroup"]["Properties"]
    assert {(r["FromPort"], r["ToPort"]) for r in ingress["SecurityGroupIngress"]} == {(80, 80), (443, 443)}
