"""The lab's own platform: the real one (``shopstream_tools.runtime.platform``) on its own ports and data
folder, so a run never disturbs a developer's platform (``data/``) or the tests' (``data-test/``).

Every port setting is moved by an offset (+8000 by default: gateway 16080, PostgreSQL 23432, Kafka
27092; every port below Linux's ephemeral range, 32768-60999, where an outgoing connection can take
a port between the free-port check and the bind).

Of observability only Prometheus runs (it scrapes the services and, while one runs, the load
generator; its CPU is sampled like any process's): the exporters, Alertmanager and the console are
not started, and Zipkin and tracing only for the tracing-cost test (``set_tracing``), so the rest
of the plan measures the services without them. The gateway's per-client rate limit is raised so
the limiter is not what gets measured. Partition counts are a lab step (PT-04): topics are deleted
and created again, since Kafka can only grow a topic's partitions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream.contracts.topics import EVENT_TOPICS
from shopstream_tools.runtime import topology

LAB_DATA = PROJECT_ROOT / "data-lab"
LAB_PORT_OFFSET = 8000
# Settings that name a port of an observability process the lab does not start: 0 means "not
# started" (for Zipkin also "no tracing").
OBSERVABILITY_PORTS = (
    "alertmanager_port",
    "node_exporter_port",
    "nginx_exporter_port",
    "postgres_exporter_port",
    "kafka_metrics_port",
    "zipkin_port",
    "console_port",
)
TOPICS = EVENT_TOPICS
UNLIMITED_RATE = 1_000_000
DEFAULT_PARTITIONS = 3
"""As the platform's default (``Settings.topic_partitions``): every test but PT-04 runs on it."""


def topic_partitions(partitions: int) -> str:
    return ",".join(f"{t}={partitions}" for t in TOPICS) + ",dead-letter=1"


def lab_settings(
    base: Settings,
    data_dir: Path = LAB_DATA,
    offset: int = LAB_PORT_OFFSET,
    partitions: int = DEFAULT_PARTITIONS,
) -> Settings:
    """The base settings moved to the lab's ports and folder."""
    changes: dict[str, object] = {"data_dir": str(data_dir)}
    defaults = Settings()
    for f in fields(Settings):
        if not f.name.endswith("_port"):
            continue
        if f.name in OBSERVABILITY_PORTS or not getattr(defaults, f.name):
            # a port that is off by default (TLS, the HTTPS redirect) stays off in the lab
            changes[f.name] = 0
        else:
            # from the defaults, so a developer's own port overrides never collide with the lab's
            changes[f.name] = int(getattr(defaults, f.name)) + offset
    changes.update(
        kafka_bootstrap="",
        product_service_url="",
        gateway_rate_limit=UNLIMITED_RATE,
        gateway_rate_burst=UNLIMITED_RATE,
        gateway_address_rate_limit=UNLIMITED_RATE,
        topic_partitions=topic_partitions(partitions),
        log_level="WARNING",  # an INFO line per request would be measured too
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def up(settings: Settings, log: Callable[[str], object] = print) -> float:
    from shopstream_tools.runtime import platform

    return platform.up(settings, log=log)


def down(settings: Settings) -> None:
    from shopstream_tools.runtime import platform

    platform.down(settings)


def instances(settings: Settings) -> dict[str, int]:

    return topology.instance_counts(settings)


def scale(settings: Settings, service: str, count: int) -> None:
    from shopstream_tools.runtime import platform

    if instances(settings).get(service) != count:
        platform.scale(settings, service, count)


def scale_consumers(settings: Settings, service: str, count: int) -> None:
    """``count`` copies of the service's consumer processes (none to scale: nothing happens)."""
    from shopstream_tools.runtime import platform

    spec = next(s for s in topology.specs() if s.name == service)
    count = min(count, topology.MAX_CONSUMERS)
    if spec.workers and topology.consumer_count(settings, service) != count:
        platform.scale_consumers(settings, service, count)


def services(settings: Settings) -> list[str]:

    return [s.name for s in topology.specs()]


def process_groups(settings: Settings) -> dict[str, list[int]]:
    """Every platform process by name, from the pid files (plus PostgreSQL's and nginx's own)."""
    from shopstream_tools.runtime import gateway, postgres, processes

    groups: dict[str, list[int]] = {}
    for name in processes.managed_names(settings):
        pid = processes.read_pid(settings, name)
        if pid and processes.alive(pid):
            groups[name] = [pid]
    for name, pid in (("postgres", postgres.pid(settings)), ("gateway", gateway.pid(settings))):
        if pid and processes.alive(pid):
            groups[name] = [pid]
    return groups


def current_partitions(settings: Settings) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    meta = admin.list_topics(timeout=10).topics
    return {t: len(meta[t].partitions) for t in TOPICS if t in meta}


def set_partitions(
    settings: Settings, partitions: int, log: Callable[[str], object] = print
) -> Settings:
    """Every topic with `partitions` partitions. When they differ: stop the services (PostgreSQL
    and Kafka stay up), delete the topics and the consumer groups' offsets, start again."""
    from confluent_kafka.admin import AdminClient

    from shopstream_tools.runtime import gateway, kafka_broker, processes

    wanted = replace(settings, topic_partitions=topic_partitions(partitions))
    if current_partitions(settings) == dict.fromkeys(TOPICS, partitions):
        return wanted
    log(f"recreating topics with {partitions} partition(s)")
    gateway.stop(settings)
    for name in processes.managed_names(settings):
        if not name.startswith((kafka_broker.NAME, "postgres")):  # the brokers and PostgreSQL stay up
            processes.stop(settings, name)
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    existing = [t for t in TOPICS if t in admin.list_topics(timeout=10).topics]
    if existing:
        for future in admin.delete_topics(existing, operation_timeout=30).values():
            future.result()
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid]
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result()
    deadline = time.monotonic() + 60
    while any(t in admin.list_topics(timeout=10).topics for t in TOPICS):
        if time.monotonic() > deadline:
            raise TimeoutError("Kafka did not delete the topics within 60 s")
        time.sleep(0.2)
    # a topic deleted a moment ago may refuse to be created again for a short while
    while True:
        try:
            kafka_broker.ensure_topics(wanted)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    up(wanted, log=lambda line: None)
    return wanted


def offset_of(settings: Settings) -> int:
    return settings.gateway_port - Settings().gateway_port


def with_tracing(settings: Settings, ratio: float | None) -> Settings:
    """The lab settings with tracing off (None) or on at `ratio`, spans to the lab's own Zipkin."""
    if ratio is None:
        return replace(settings, zipkin_port=0)
    port = Settings().zipkin_port + offset_of(settings)
    return replace(settings, zipkin_port=port, tracing_sample_ratio=ratio)


def tracing_ratio(settings: Settings) -> float | None:
    return settings.tracing_sample_ratio if settings.zipkin_port else None


def set_tracing(
    settings: Settings, ratio: float | None, log: Callable[[str], object] = print
) -> Settings:
    """Every service process (instances, relays, consumers) restarted with tracing off (None) or
    on at `ratio`: a process sets tracing up once, from its environment. Zipkin, once started,
    keeps running until ``stop_zipkin``: both settings then run beside the same idle or busy JVM
    instead of one paying for its start."""
    from shopstream_tools.runtime import processes

    wanted = with_tracing(settings, ratio)
    log(f"  services restarted with tracing {'off' if ratio is None else f'at ratio {ratio:g}'}")
    counts = instances(settings)
    for spec in topology.specs():
        names = [
            topology.instance_name(spec.name, i) for i in range(1, counts.get(spec.name, 0) + 1)
        ]
        names += [f"{spec.name}-relay", *(w.name for w in topology.workers(settings, spec))]
        for name in names:
            processes.stop(settings, name)
    up(wanted, log=lambda line: None)  # starts Zipkin too when tracing is on
    return wanted


def zipkin_running(settings: Settings) -> bool:
    from shopstream_tools.runtime import processes, satellites

    return processes.alive(processes.read_pid(settings, satellites.ZIPKIN))


def stop_zipkin(settings: Settings) -> None:
    from shopstream_tools.runtime import processes, satellites

    processes.stop(settings, satellites.ZIPKIN)


def set_balancing(settings: Settings, strategy: str) -> Settings:
    """The gateway spreading requests over instances by ``strategy`` (a ``gateway_balancing``
    value): its configuration rendered again and reloaded gracefully; nothing else restarts."""
    from shopstream_tools.runtime import gateway

    wanted = replace(settings, gateway_balancing=strategy)
    if strategy != settings.gateway_balancing or not gateway.running(settings):
        gateway.reload(wanted, topology.upstreams(wanted))
    return wanted


def set_order_partitioning(
    settings: Settings, strategy: str, log: Callable[[str], object] = print
) -> Settings:
    """Every order-service process (instances, relay, consumers) restarted keying its messages by
    ``strategy`` (an ``order_partition_strategy`` value): a process reads it once, at start."""
    from shopstream_tools.runtime import processes

    wanted = replace(settings, order_partition_strategy=strategy)
    if strategy == settings.order_partition_strategy:
        return wanted
    log(f"  order service restarted keying its messages by {strategy}")
    spec = next(s for s in topology.specs() if s.name == "order")
    count = instances(settings).get("order", 0)
    names = [topology.instance_name("order", i) for i in range(1, count + 1)]
    names += ["order-relay", *(w.name for w in topology.workers(settings, spec))]
    for name in names:
        processes.stop(settings, name)
    up(wanted, log=lambda line: None)
    return wanted


def ports(settings: Settings, max_instances: int = 8) -> list[int]:
    """Every port the lab platform may listen on."""

    used = [
        settings.gateway_port,
        settings.gateway_status_port,
        settings.postgres_port,
        settings.kafka_port,
        settings.kafka_controller_port,
        settings.prometheus_port,
        with_tracing(settings, 1.0).zipkin_port,
    ]
    for service in ("product", "order"):
        used += [settings.service_port(service, i) for i in range(1, max_instances + 1)]
        used.append(settings.service_port(service) + 1000)  # the relay
        used += [topology.worker_metrics_port(settings, service, 0, copy) for copy in range(1, 9)]
    return used


def port_problem(settings: Settings) -> str:
    """Why the lab platform cannot start on its ports ("" when it can): a port taken by another
    program while the lab's own processes are not running."""
    from shopstream_tools.runtime import processes

    mine = {p for pids in process_groups(settings).values() for p in pids}
    for port in ports(settings):
        if processes.port_open(port) and not _listener_is(port, mine):
            return (
                f"port {port} is taken by another program; the lab uses its ports + an offset "
                f"(--port-offset) and {settings.data_path}"
            )
    return ""


def _listener_is(port: int, pids: set[int]) -> bool:
    """Whether one of these processes (or their children) listens on the port, from /proc."""
    import os

    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return False
    family = set(pids)
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(entry.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in family:
            family.add(int(entry.parent.name))
    for pid in family:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
        except OSError:
            continue
    return False


def free_offset(base: Settings, data_dir: Path, candidates: list[int]) -> int:
    """The first offset whose ports are all free (or already the lab platform's own)."""
    for offset in candidates:
        if not port_problem(lab_settings(base, data_dir, offset)):
            return offset
    raise RuntimeError(f"no free set of ports among offsets {candidates}")
