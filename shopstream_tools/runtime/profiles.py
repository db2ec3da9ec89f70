"""Platform profiles: ``up --profile ha`` runs the platform with no single point of failure.

``ha``: three KRaft brokers (every topic replicated three times, a write acknowledged once two
brokers hold it, idempotent producers with acks=all as always), two instances of each service
behind the gateway, two consumer processes per consumer group, and PostgreSQL as a primary with a
synchronous standby that Patroni fails over by itself (``postgres_ha``). The profile chosen by ``up`` is
kept in the data folder, so ``status``, ``scale``, ``down`` and the next ``up`` follow it. A data
folder's Kafka cluster is made for one profile: switch profiles with ``reset`` (or a fresh
``SHOPSTREAM_DATA_DIR``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from shopstream.config import Settings

PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "ha": {
        "kafka_brokers": 3,
        "topic_replication": 3,
        "product_instances": 2,
        "order_instances": 2,
        "postgres_nodes": 2,
        # a request safe to repeat waits out a PostgreSQL failover (measured: 2-6 s) instead of
        # answering 503
        "db_failover_seconds": 15.0,
    },
}
CONSUMERS = {"default": 1, "ha": 2}  # consumer processes per group on the first `up`


def _file(settings: Settings) -> Path:
    return settings.data_path / "run" / "profile.json"


def current(settings: Settings) -> str:
    try:
        return str(json.loads(_file(settings).read_text())["profile"])
    except (FileNotFoundError, ValueError, KeyError):
        return "default"


def apply(settings: Settings, chosen: str | None = None) -> Settings:
    """The settings under the chosen profile (``up --profile``), else the one kept by ``up``."""
    name = chosen or current(settings)
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; one of {', '.join(PROFILES)}")
    if chosen is not None:
        kept = current(settings)
        kafka_made = (settings.data_path / "kafka" / "logs" / "meta.properties").exists()
        if kafka_made and kept != name:
            raise ValueError(
                f"this data folder runs the {kept!r} profile: `shopstream reset` first"
            )
        _file(settings).parent.mkdir(parents=True, exist_ok=True)
        _file(settings).write_text(json.dumps({"profile": name}))
    return dataclasses.replace(settings, **PROFILES[name])
