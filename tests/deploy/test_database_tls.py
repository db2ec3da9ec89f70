"""RDS connections verify the server: sslmode verify-full against RDS's CA bundle, on ECS and EKS.

The bundle is baked into the service images (deploy/docker/service.Dockerfile); every container
that reaches RDS (services, relays, consumers, migrate, the postgres exporter) names that file.
"""

from __future__ import annotations

import re
import ssl

from asyncpg import connect_utils

from shopstream.config import Settings
from tests.deploy import helpers as h

BUNDLE = "/etc/ssl/rds/global-bundle.pem"


def test_the_image_carries_the_bundle_where_the_deployments_look() -> None:
    dockerfile = (h.DOCKER / "service.Dockerfile").read_text()
    assert re.search(
        r"ARG RDS_CA_BUNDLE_URL=https://truststore\.pki\.rds\.amazonaws\.com/", dockerfile
    )
    assert f"COPY --from=build /opt/rds-ca {BUNDLE.rsplit('/', 1)[0]}" in dockerfile
    assert "/opt/rds-ca/global-bundle.pem" in dockerfile


def test_the_derived_urls_make_asyncpg_verify_the_certificate_and_the_name(tmp_path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(_a_certificate())
    settings = Settings.from_env(
        {
            "SHOPSTREAM_POSTGRES_HOST": "db.example.rds.amazonaws.com",
            "SHOPSTREAM_POSTGRES_SSLMODE": "verify-full",
            "SHOPSTREAM_POSTGRES_SSLROOTCERT": str(bundle),
        }
    )
    url = settings.database_url("order")
    assert url.endswith(f"/order?sslmode=verify-full&sslrootcert={bundle}")
    # what asyncpg makes of it (its parser, not a connection): a verifying TLS context
    _addresses, params = connect_utils._parse_connect_dsn_and_args(
        dsn=url, host=None, port=None, user=None, password=None, passfile=None, database=None,
        ssl=None, service=None, servicefile=None, direct_tls=None, server_settings=None,
        target_session_attrs=None, krbsrvname=None, gsslib=None,
    )  # fmt: skip
    assert params.sslmode == connect_utils.SSLMode.verify_full
    assert params.ssl.verify_mode == ssl.CERT_REQUIRED and params.ssl.check_hostname
    assert Settings().database_url("order").endswith("/order"), "locally: no TLS parameters"


def _a_certificate() -> str:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_every_container_that_reaches_rds_verifies_it() -> None:
    for deployment in ("ecs", "k8s-eks"):
        apps = [w for w in h.workloads(deployment) if w.is_app]
        assert len(apps) > len(h.APP_ROLES)
        for w in apps:
            assert w.env.get("SHOPSTREAM_POSTGRES_SSLMODE") == "verify-full", (deployment, w.name)
            assert w.env.get("SHOPSTREAM_POSTGRES_SSLROOTCERT") == BUNDLE, (deployment, w.name)
    (exporter,) = [
        d for d in h.rendered("eks")
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "postgres-exporter"
    ]  # fmt: skip
    pod = exporter["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}
    assert env["PG_SSLMODE"] == "verify-full"
    assert f"sslrootcert={BUNDLE}" in env["DATA_SOURCE_URI"]
    (copier,) = pod["initContainers"]
    assert "/shopstream/product-service" in copier["image"] and BUNDLE in copier["command"]
