"""Which processes make up the local platform and where they listen: the services and their
instances, relays and consumer workers, their ports and the instance counts kept in
``<data>/run/instances.json``. Read by the platform that starts them and by the Prometheus
configuration that scrapes them."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import processes


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its HTTP app (scaled by instances), its outbox relay and its event consumers."""

    name: str

    @property
    def present(self) -> bool:
        return (PROJECT_ROOT / "services" / self.name / "entrypoints" / "app.py").exists()

    @property
    def workers(self) -> tuple[str, ...]:
        """Worker processes beside the relay: `shopstream consume <name>` when it has consumers."""
        consumers = PROJECT_ROOT / "services" / self.name / "entrypoints" / "consumers.py"
        return ("consume",) if consumers.exists() else ()


SPECS = (
    ServiceSpec("product"),
    ServiceSpec("order"),
)


def specs() -> list[ServiceSpec]:
    return [s for s in SPECS if s.present]


def relay_metrics_port(settings: Settings, service: str) -> int:
    return settings.service_port(service) + 1000


MAX_CONSUMERS = 8  # each consumer process k has its metrics on port + 1100 + (k-1) * 100


def worker_metrics_port(settings: Settings, service: str, index: int, copy: int = 1) -> int:
    return settings.service_port(service) + 1100 + index + (copy - 1) * 100


def worker_name(service: str, kind: str, copy: int = 1) -> str:
    return f"{service}-{kind}" if copy == 1 else f"{service}-{kind}-{copy}"


@dataclass(frozen=True)
class Worker:
    """One worker process: `shopstream <kind> <service>`, in as many copies as the service's
    consumer count; the copies join the same Kafka consumer groups and share the partitions."""

    service: str
    kind: str
    name: str
    metrics_port: int


def workers(settings: Settings, spec: ServiceSpec) -> list[Worker]:
    copies = consumer_count(settings, spec.name)
    return [
        Worker(spec.name, kind, worker_name(spec.name, kind, copy),
               worker_metrics_port(settings, spec.name, index, copy))
        for index, kind in enumerate(spec.workers)
        for copy in range(1, copies + 1)
    ]  # fmt: skip


def shopstream_cli() -> list[str]:
    return [sys.executable, "-m", "shopstream_tools.cli"]


# --- instance bookkeeping -----------------------------------------------------------------------


def state_file(settings: Settings) -> Path:
    return processes.run_dir(settings) / "instances.json"


def instance_counts(settings: Settings) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads(state_file(settings).read_text()).items()}
    except (FileNotFoundError, ValueError):
        return {}


def save_counts(settings: Settings, counts: dict[str, int]) -> None:
    state_file(settings).write_text(json.dumps(counts))


def consumers_key(service: str) -> str:
    return f"{service}-consumers"


def consumer_count(settings: Settings, service: str) -> int:
    """How many copies of each of the service's consumer processes run (1 unless scaled)."""
    return instance_counts(settings).get(consumers_key(service), 1)


def upstreams(settings: Settings) -> dict[str, list[int]]:
    counts = instance_counts(settings)
    return {
        spec.name: [
            settings.service_port(spec.name, i) for i in range(1, counts.get(spec.name, 0) + 1)
        ]
        for spec in SPECS
    }


def instance_name(service: str, instance: int) -> str:
    return f"{service}-{instance}"
