"""The compose stack's identity: the local issuer's keys made on the host, shown to containers.

The services need the issuer's public keys (JWKS) and order-service the credential it presents on
product-service's internal API; nothing in a container may sign tokens. So the keys are made by the
same code as the local platform's (``auth.ensure_local_issuer``) under ``<home>/auth`` (0600), and
the two files the containers read are copied to ``<home>/auth-public``, readable by the services'
user (uid 10001), which is mounted read-only at /run/shopstream/auth.

The gateway's TLS certificate comes from a local CA of the stack's own (``<home>/gateway-ca``, its
key private), issued for localhost, 127.0.0.1, ::1 and the service name ``gateway`` into
``<home>/gateway-tls`` with ``ca.crt`` beside it: nginx (uid 101) reads the key there, mounted
read-only at /etc/nginx/tls; clients on the host trust ``ca.crt``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shopstream import auth
from shopstream.config import Settings
from shopstream_tools.runtime import gateway_tls

SHOWN = ("jwks.json", "service-token")


GATEWAY_NAMES = [*gateway_tls.LOCAL_NAMES, "gateway"]


def public_dir(home: Path) -> Path:
    return home / "auth-public"


def tls_dir(home: Path) -> Path:
    return home / "gateway-tls"


def prepare(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)  # the copies below are readable by everyone: only through this folder
    auth.ensure_local_issuer(Settings.from_env({"SHOPSTREAM_DATA_DIR": str(home)}))
    shown = public_dir(home)
    shown.mkdir(exist_ok=True)
    shown.chmod(0o755)
    for name in SHOWN:
        shutil.copyfile(home / "auth" / name, shown / name)
        (shown / name).chmod(0o644)
    tls = tls_dir(home)
    gateway_tls.issue(home / "gateway-ca", tls, GATEWAY_NAMES, "gateway", key_mode=0o644)
    tls.chmod(0o755)
    return shown
