"""Alertmanager for the local platform: one route to one receiver, the console's webhook (which
keeps every notification in ``<data>/logs/alert-notifications.log``). Everything lives under
``<data>/alertmanager``, but for the credential Alertmanager presents to the console's webhook
(``<data>/auth/alertmanager-token``, mode 0600): the console is for operators, and that credential
opens its webhook only (docs/security.md)."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import yaml

from shopstream.config import Settings
from shopstream_tools.runtime import satellites

# Local notifications should arrive while the cause is still on screen: a first notification 10 s
# after an alert fires, changes (a new alert, a resolution) within 30 s. A still-firing alert is
# repeated every 4 h, so the notification log stays short.
GROUP_WAIT = "10s"
GROUP_INTERVAL = "30s"
REPEAT_INTERVAL = "4h"
CONSOLE_RECEIVER = "console"


def home(settings: Settings) -> Path:
    return settings.data_path / "alertmanager"


def credential_path(settings: Settings) -> Path:
    return settings.data_path / "auth" / "alertmanager-token"


def ensure_credential(settings: Settings) -> Path:
    """A random credential for the webhook, made once (rotate: delete it, then ``up``)."""
    path = credential_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path


def config(settings: Settings) -> str:
    """One route to one receiver: the console's webhook, when the console runs."""
    receiver: dict[str, Any] = {"name": CONSOLE_RECEIVER}
    if settings.console_port and satellites.console_present():
        webhook = f"http://127.0.0.1:{settings.console_port}/api/alerts/notifications"
        receiver["webhook_configs"] = [{
            "url": webhook,
            "send_resolved": True,
            # read by Alertmanager at each notification: never written into this file
            "http_config": {"authorization": {
                "type": "Bearer", "credentials_file": str(ensure_credential(settings)),
            }},
        }]  # fmt: skip
    config = {
        "route": {
            "receiver": CONSOLE_RECEIVER,
            # every label set its own group: each alert is notified, and resolved, on its own
            "group_by": ["..."],
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL,
        },
        "receivers": [receiver],
    }
    return (
        "# Written by `shopstream up` (shopstream_tools/runtime/alertmanager.py): do not edit.\n"
        + (yaml.safe_dump(config, sort_keys=False))
    )


def write_config(settings: Settings) -> Path:
    folder = home(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "alertmanager.yml"
    path.write_text(config(settings))
    return path


def amtool() -> str:
    return shutil.which("amtool") or "/usr/bin/amtool"


def argv(settings: Settings) -> list[str]:
    folder = home(settings)
    url = f"http://127.0.0.1:{settings.alertmanager_port}"
    return [
        shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager",
        f"--config.file={folder / 'alertmanager.yml'}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{settings.alertmanager_port}",
        f"--web.external-url={url}",
        # a single instance: no gossip port (its default, 0.0.0.0:9094, would clash between platforms)
        "--cluster.listen-address=",
    ]
