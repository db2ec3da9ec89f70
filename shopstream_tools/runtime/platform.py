"""The whole local platform: which processes make it up, and bringing them up, down and to scale."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from shopstream import auth, db
from shopstream.config import Settings
from shopstream_tools.runtime import (
    gateway,
    kafka_broker,
    observability,
    postgres,
    postgres_ha,
    processes,
    profiles,
    prometheus,
    supervision,
    topology,
)

# --- processes ---------------------------------------------------------------------------------


def start_instance(settings: Settings, service: str, instance: int) -> int:
    name = topology.instance_name(service, instance)
    port = settings.service_port(service, instance)
    argv = [*topology.shopstream_cli(), "serve", service, "--port", str(port)]
    return supervision.add(settings, name, argv, env={"SHOPSTREAM_INSTANCE_ID": name})


def wait_instance_ready(
    settings: Settings, service: str, instance: int, timeout: float = 60
) -> None:
    name = topology.instance_name(service, instance)
    url = f"http://127.0.0.1:{settings.service_port(service, instance)}/health/ready"
    pid, log = processes.read_pid(settings, name), supervision.log_file(settings, name)
    processes.wait_until(lambda: processes.http_ok(url), timeout, name, pid, log=log)


def start_relay(settings: Settings, service: str) -> int:
    name = f"{service}-relay"
    if processes.alive(processes.read_pid(settings, name)):
        return processes.read_pid(settings, name) or 0
    argv = [
        *topology.shopstream_cli(),
        "relay",
        service,
        "--metrics-port",
        str(topology.relay_metrics_port(settings, service)),
    ]
    return supervision.add(settings, name, argv, env={"SHOPSTREAM_INSTANCE_ID": name})


def start_workers(settings: Settings, spec: topology.ServiceSpec) -> None:
    for worker in topology.workers(settings, spec):
        if processes.alive(processes.read_pid(settings, worker.name)):
            continue
        argv = [
            *topology.shopstream_cli(),
            worker.kind,
            spec.name,
            "--metrics-port",
            str(worker.metrics_port),
        ]
        supervision.add(settings, worker.name, argv, env={"SHOPSTREAM_INSTANCE_ID": worker.name})


def migrate_all(settings: Settings, services: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Migrate ``services`` (default: all) through the admin role, as each database's owner."""

    async def run() -> dict[str, list[str]]:
        return {
            s.name: await db.migrate(
                settings.admin_database_url(s.name),
                s.name,
                settings.database_owner(s.name),
            )
            for s in topology.specs()
            if not services or s.name in services
        }

    return asyncio.run(run())


def up(settings: Settings, log: Callable[[str], object] = print) -> float:
    """Start everything that is not running; return the seconds it took."""
    started = time.monotonic()
    auth.ensure_local_issuer(settings)  # before the services: they read its JWKS
    kafka_broker.start(settings)  # the JVM boots while PostgreSQL starts and migrates
    postgres.start(settings)
    if postgres_ha.enabled(settings):
        log(f"postgres  ready: primary {postgres_ha.primary(settings)} of nodes on "
            f"{', '.join(f':{p}' for p in settings.postgres_ports)}")  # fmt: skip
    else:
        log(f"postgres  ready on :{settings.postgres_port}")
    for service, versions in migrate_all(settings).items():
        if versions:
            log(f"migrated  {service}: {', '.join(versions)}")
    kafka_broker.wait_ready(settings)
    kafka_broker.ensure_topics(settings)
    log(f"kafka     ready on {settings.kafka_servers} (topics: {settings.topic_partitions})")
    counts = topology.instance_counts(settings)
    for spec in topology.specs():  # the profile's consumer count, on the first `up` of a data folder
        if spec.workers and topology.consumers_key(spec.name) not in counts:
            counts[topology.consumers_key(spec.name)] = profiles.CONSUMERS[profiles.current(settings)]
    topology.save_counts(settings, counts)
    for spec in topology.specs():
        wanted = counts.get(spec.name) or int(getattr(settings, f"{spec.name}_instances"))
        counts[spec.name] = wanted
        start_relay(settings, spec.name)
        start_workers(settings, spec)
        for i in range(1, wanted + 1):
            if not processes.alive(
                processes.read_pid(settings, topology.instance_name(spec.name, i))
            ):
                start_instance(settings, spec.name, i)
    topology.save_counts(settings, counts)
    for spec in topology.specs():
        for i in range(1, counts[spec.name] + 1):
            wait_instance_ready(settings, spec.name, i)
        log(f"{spec.name:<9} ready: {counts[spec.name]} instance(s)")
    if gateway.running(settings):
        gateway.reload(settings, topology.upstreams(settings))
    else:
        gateway.start(settings, topology.upstreams(settings))
    log(f"gateway   ready on :{settings.gateway_port}")
    observability.start(settings, log)
    return time.monotonic() - started


def scale_consumers(settings: Settings, service: str, count: int) -> None:
    """Run ``count`` copies of the service's consumer processes. Copies join the same consumer
    groups, so Kafka shares the partitions among them (more copies than partitions idle); one that
    stops leaves its partitions to the others after a rebalance, with nothing applied twice (the
    consumers are idempotent)."""
    spec = next((s for s in topology.specs() if s.name == service), None)
    if spec is None:
        raise ValueError(f"unknown service {service!r}")
    if not spec.workers:
        raise ValueError(f"{service} has no consumers")
    if not 1 <= count <= topology.MAX_CONSUMERS:
        raise ValueError(f"consumers must be 1..{topology.MAX_CONSUMERS}")
    before = topology.workers(settings, spec)
    counts = topology.instance_counts(settings)
    counts[topology.consumers_key(service)] = count
    topology.save_counts(settings, counts)
    start_workers(settings, spec)
    for worker in topology.workers(settings, spec):
        url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
        pid = processes.read_pid(settings, worker.name)
        log = supervision.log_file(settings, worker.name)
        processes.wait_until(partial(processes.http_ok, url), 60, worker.name, pid, log=log)
    prometheus.write_targets(settings)
    wanted = {w.name for w in topology.workers(settings, spec)}
    for worker in before:
        if worker.name not in wanted:
            supervision.stop(settings, worker.name, remove=True)


def scale(settings: Settings, service: str, count: int) -> None:
    """Start or stop instances, then point the gateway at exactly the ready ones."""
    if service not in {s.name for s in topology.specs()}:
        raise ValueError(f"unknown service {service!r}")
    if count < 0:
        raise ValueError("instances must be >= 0")
    counts = topology.instance_counts(settings)
    current = counts.get(service, 0)
    for i in range(current + 1, count + 1):
        start_instance(settings, service, i)
    for i in range(current + 1, count + 1):
        wait_instance_ready(settings, service, i)
    counts[service] = count
    topology.save_counts(settings, counts)
    if gateway.running(settings):
        gateway.reload(settings, topology.upstreams(settings))
    prometheus.write_targets(settings)  # Prometheus follows the discovery files
    # Removed instances leave the gateway first, then finish their in-flight requests and exit.
    for i in range(count + 1, current + 1):
        supervision.stop(settings, topology.instance_name(service, i), remove=True)


def down(settings: Settings) -> None:
    gateway.stop(settings)
    services = [
        n for n in supervision.names(settings) if not n.startswith((kafka_broker.NAME, postgres.NAME))
    ]
    with concurrent.futures.ThreadPoolExecutor(max(1, len(services))) as pool:
        list(pool.map(lambda name: supervision.stop(settings, name), services))
    kafka_broker.stop(settings)  # every broker at once, after the clients
    supervision.shutdown(settings)  # PostgreSQL, last; forget the programs
    for name in processes.managed_names(settings):
        if not name.startswith(kafka_broker.NAME):
            processes.stop(settings, name)
    postgres.stop(settings)


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    port: int | None
    health: str
    rss_mb: float
    command: str
    restarts: int = 0  # by supervisord, after an unplanned exit

    @property
    def program(self) -> str:
        """The command shortened for a table: a JVM by its main class, anything else by its start."""
        words = self.command.split()
        if words and words[0].endswith("java") and "-cp" in words:
            rest = words[words.index("-cp") + 2 :]
            return "java " + " ".join(w.rsplit("/", 1)[-1] for w in rest)
        return self.command[:70]


def status(settings: Settings) -> list[ProcessStatus]:
    rows: list[ProcessStatus] = []
    supervised = supervision.states(settings)

    def add(name: str, pid: int | None, port: int | None, health: str) -> None:
        alive = processes.alive(pid)
        program = supervised.get(name)
        if program is not None and program.state in ("FATAL", "BACKOFF"):
            health = program.state.lower()  # a crash loop: supervisord gave up or is backing off
        rows.append(
            ProcessStatus(
                name,
                pid if alive else None,
                port,
                health if alive else "down",
                processes.rss_bytes(pid) / 2**20 if alive and pid else 0.0,
                processes.command_line(pid) if alive and pid else "",
                program.restarts if program else 0,
            )
        )
        if program is not None and program.state == "FATAL":
            rows[-1] = ProcessStatus(name, None, port, "fatal", 0.0, "", program.restarts)

    if supervised:
        add(supervision.NAME, processes.read_pid_file(supervision.pid_file(settings)), None, "up")
        watcher = supervised.get(supervision.WATCH)
        if watcher is not None:
            add(watcher.name, watcher.pid, supervision.metrics_port(settings), "up")

    if postgres_ha.enabled(settings):
        roles = postgres_ha.roles(settings)  # primary, sync standby, standby: as Patroni sees them
        for node in postgres_ha.nodes(settings):
            name = postgres_ha.node_name(node)
            add(name, postgres_ha.postmaster_pid(settings, node),
                postgres_ha.port(settings, node), roles.get(node, "starting"))  # fmt: skip
        witness = supervised.get(postgres_ha.RAFT)
        add(postgres_ha.RAFT, witness.pid if witness else None, None, "up")
    else:
        add("postgres", postgres.pid(settings), settings.postgres_port,
            "up" if postgres.running(settings) else "starting")  # fmt: skip
    for node in kafka_broker.nodes(settings):
        port = kafka_broker.broker_port(settings, node)
        add(
            kafka_broker.node_name(node),
            kafka_broker.pid(settings, node),
            port,
            "up" if processes.port_open(port) else "starting",
        )
    counts = topology.instance_counts(settings)
    for spec in topology.specs():
        for i in range(1, counts.get(spec.name, 0) + 1):
            port = settings.service_port(spec.name, i)
            ready = processes.http_ok(f"http://127.0.0.1:{port}/health/ready")
            add(
                topology.instance_name(spec.name, i),
                processes.read_pid(settings, topology.instance_name(spec.name, i)),
                port,
                "ready" if ready else "not ready",
            )
        relay = f"{spec.name}-relay"
        port = topology.relay_metrics_port(settings, spec.name)
        add(
            relay,
            processes.read_pid(settings, relay),
            port,
            "up" if processes.http_ok(f"http://127.0.0.1:{port}/metrics") else "starting",
        )
        for worker in topology.workers(settings, spec):
            url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
            add(
                worker.name,
                processes.read_pid(settings, worker.name),
                worker.metrics_port,
                "up" if processes.http_ok(url) else "starting",
            )
    add(
        "gateway",
        gateway.pid(settings),
        settings.gateway_port,
        "up" if processes.port_open(settings.gateway_port) else "down",
    )
    for name, pid, port, health in observability.status(settings):
        add(name, pid, port, health)
    return rows
