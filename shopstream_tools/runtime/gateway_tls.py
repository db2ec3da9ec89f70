"""TLS at the gateway (SHOPSTREAM_GATEWAY_TLS_PORT): the certificate nginx serves.

Given files (SHOPSTREAM_GATEWAY_TLS_CERT/_KEY) are used as they are. Otherwise the gateway makes
its own on first start: a self-signed P-256 certificate for localhost and 127.0.0.1, under
<data>/gateway/tls (key mode 0600), with `cryptography`. Clients trust that file
(`curl --cacert`, httpx `verify=`); a public deployment gives a real certificate instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shopstream.config import Settings

VALID_DAYS = 365


def tls_dir(settings: Settings) -> Path:
    return settings.data_path / "gateway" / "tls"


def certificate(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key) for nginx: the configured files, or the local ones, made if missing."""
    if settings.gateway_tls_cert or settings.gateway_tls_key:
        cert, key = Path(settings.gateway_tls_cert), Path(settings.gateway_tls_key)
        for path in (cert, key):
            if not path.is_file():
                raise ValueError(f"gateway TLS file not found: {path}")
        return cert, key
    folder = tls_dir(settings)
    cert, key = folder / "gateway.crt", folder / "gateway.key"
    if not (cert.exists() and key.exists()):
        _make_self_signed(cert, key)
    return cert, key


def _make_self_signed(cert_path: Path, key_path: Path) -> None:
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shopstream local gateway")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem_key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def listen_lines(settings: Settings) -> str:
    """The server block's TLS lines; empty when SHOPSTREAM_GATEWAY_TLS_PORT is 0."""
    port = int(settings.gateway_tls_port)
    if not port:
        return ""
    if not 0 < port < 65536:
        raise ValueError(f"gateway_tls_port is not a port: {port}")
    cert, key = certificate(settings)
    return (
        f"        listen 127.0.0.1:{port} ssl backlog=4096;\n"
        f"        ssl_certificate {cert};\n"
        f"        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        ssl_session_cache shared:gw_tls:10m;\n"
        "        ssl_session_timeout 1h;\n"
    )
