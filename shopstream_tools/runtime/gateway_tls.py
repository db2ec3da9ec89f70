"""TLS at the gateway (SHOPSTREAM_GATEWAY_TLS_PORT): the certificate nginx serves.

Given files (SHOPSTREAM_GATEWAY_TLS_CERT/_KEY) are used as they are: a deployment's real
certificate. Otherwise the platform issues its own, the way mkcert does, with `cryptography`: a
local certificate authority made once (``ca.crt``, its key ``ca.key`` mode 0600, ten years), and a
server certificate it signs for localhost, 127.0.0.1, ::1 and SHOPSTREAM_GATEWAY_TLS_NAMES (a
year, reissued at start when a name changed or 30 days remain). Clients trust the CA once
(``curl --cacert <data>/gateway/tls/ca.crt``, httpx ``verify=``), and keep trusting it across
reissues. ``shopstream gateway-cert`` issues one for other hosts (the compose stack, a cluster's
Secret) from the same CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from shopstream.config import Settings

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    ca: Path


def tls_dir(settings: Settings) -> Path:
    return settings.data_path / "gateway" / "tls"


def names(settings: Settings) -> list[str]:
    extra = [n.strip() for n in settings.gateway_tls_names.split(",") if n.strip()]
    return list(dict.fromkeys([*LOCAL_NAMES, *extra]))


def certificate(settings: Settings) -> tuple[Path, Path]:
    """(certificate, key) for nginx: the configured files, or the local ones, issued if needed."""
    if settings.gateway_tls_cert or settings.gateway_tls_key:
        cert, key = Path(settings.gateway_tls_cert), Path(settings.gateway_tls_key)
        for path in (cert, key):
            if not path.is_file():
                raise ValueError(f"gateway TLS file not found: {path}")
        return cert, key
    issued = issue(tls_dir(settings), tls_dir(settings), names(settings), "gateway")
    return issued.cert, issued.key


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, mode: int) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)


_CA_USAGE = x509.KeyUsage(
    digital_signature=False, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def _authority(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The local CA, made on first use."""
    cert_path, key_path = folder / "ca.crt", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "shopstream"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"shopstream local CA ({os.uname().nodename})"),
    ])  # fmt: skip
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _alt_names(wanted: list[str]) -> list[x509.GeneralName]:
    found: list[x509.GeneralName] = []
    for name in wanted:
        try:
            found.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            found.append(x509.DNSName(name))
    return found


def _still_good(cert_path: Path, key_path: Path, ca: x509.Certificate, wanted: list[str]) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san) == set(_alt_names(wanted))


def issue(ca_folder: Path, out: Path, wanted: list[str], stem: str, key_mode: int = 0o600) -> Issued:
    """``<out>/<stem>.crt`` and ``.key`` for ``wanted`` names, signed by the CA of ``ca_folder``;
    kept when still valid for those names (so nginx reloads see the same files)."""
    ca_cert, ca_key = _authority(ca_folder)
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / f"{stem}.crt", out / f"{stem}.key"
    if not _still_good(cert_path, key_path, ca_cert, wanted):
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(_alt_names(wanted)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_key(key_path, key, key_mode)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if out != ca_folder:
        (out / "ca.crt").write_bytes((ca_folder / "ca.crt").read_bytes())
    return Issued(cert_path, key_path, ca_folder / "ca.crt")


def redirect_lines(port: int, indent: str = "        ") -> str:
    """Plain HTTP answered with 308 to HTTPS on ``port`` (the port clients reach: 443 behind a
    load balancer); 308 keeps the method and body of a POST."""
    if not port:
        return ""
    if not 0 < port < 65536:
        raise ValueError(f"gateway_https_redirect_port is not a port: {port}")
    authority = "$host" if port == 443 else f"$host:{port}"
    return (
        f'{indent}if ($https = "") {{\n'
        f"{indent}    return 308 https://{authority}$request_uri;\n"
        f"{indent}}}\n"
    )


def listen_lines(settings: Settings) -> str:
    """The server block's TLS lines; empty when SHOPSTREAM_GATEWAY_TLS_PORT is 0."""
    port = int(settings.gateway_tls_port)
    if not port:
        if settings.gateway_https_redirect_port:
            raise ValueError("gateway_https_redirect_port needs gateway_tls_port")
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
        + redirect_lines(int(settings.gateway_https_redirect_port))
    )


def client_endpoint(settings: Settings) -> tuple[str, str | bool]:
    """(base URL, httpx ``verify``) for the platform's own calls through its gateway: plain HTTP,
    unless plain HTTP is redirected, then HTTPS trusting the local CA (or the system's CAs for
    configured certificates)."""
    if not (settings.gateway_https_redirect_port and settings.gateway_tls_port):
        return f"http://127.0.0.1:{settings.gateway_port}", True
    ca = tls_dir(settings) / "ca.crt"
    verify: str | bool = str(ca) if not settings.gateway_tls_cert and ca.exists() else True
    return f"https://localhost:{settings.gateway_tls_port}", verify
