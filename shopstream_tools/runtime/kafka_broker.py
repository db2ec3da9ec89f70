"""A real Apache Kafka broker (KRaft, broker and controller in one JVM) from its Maven Central jars.

The jars are fetched by ``infra/kafka/pom.xml`` into ``infra/kafka/libs``; the broker's log
directories live under the data folder. Kafka's own command-line tools run through ``tool()``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import exporters, processes

KAFKA_HOME = PROJECT_ROOT / "infra" / "kafka"
LIBS = KAFKA_HOME / "libs"
NAME = "kafka"

# The command-line tools operators reach for, by short name.
TOOLS = {
    "topics": "org.apache.kafka.tools.TopicCommand",
    "consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "producer-perf-test": "org.apache.kafka.tools.ProducerPerformance",
    "consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "configs": "kafka.admin.ConfigCommand",
    "storage": "kafka.tools.StorageTool",
}


def broker_dir(settings: Settings) -> Path:
    return settings.data_path / "kafka"


def _classpath() -> str:
    if not any(LIBS.glob("kafka_2.13-*.jar")):
        raise RuntimeError("Kafka jars missing: run scripts/bootstrap.sh")
    # java expands the quoted glob itself.
    return str(LIBS) + "/*"


def server_properties(settings: Settings) -> str:
    logs = broker_dir(settings) / "logs"
    c, b = settings.kafka_controller_port, settings.kafka_port
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{c}",
            f"listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{b}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={logs}",
            "num.partitions=3",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=12",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            # Offset commits wait for this linger; 0 makes per-batch commits 2x faster.
            "group.coordinator.append.linger.ms=0",
            "log.retention.hours=72",
            # One network thread and two request handlers for a one-node broker on a small machine:
            # a request crosses fewer threads (measured 0.33 -> 0.20-0.27 cores for the same
            # 500 msg/s and five followers on 2 cores).
            "num.network.threads=1",
            "num.io.threads=2",
            "",
        ]
    )


def _java(main: str, *args: str, quiet: bool = True) -> list[str]:
    log4j = KAFKA_HOME / ("tools-log4j2.properties" if quiet else "log4j2.properties")
    return ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", _classpath(), main, *args]


def tool(name: str, *args: str, settings: Settings | None = None) -> list[str]:
    """argv for one of Kafka's command-line tools, by short name or main class."""
    main = TOOLS.get(name, name)
    return _java(main, *args)


def formatted(settings: Settings) -> bool:
    return (broker_dir(settings) / "logs" / "meta.properties").exists()


def format_storage(settings: Settings) -> None:
    home = broker_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(server_properties(settings))
    if formatted(settings):
        return
    cluster_id = subprocess.run(
        _java(TOOLS["storage"], "random-uuid"), check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        _java(TOOLS["storage"], "format", "-t", cluster_id, "-c", str(props), "--ignore-formatted"),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def pid(settings: Settings) -> int | None:
    return processes.read_pid(settings, NAME)


def running(settings: Settings) -> bool:
    return processes.alive(pid(settings))


def start(settings: Settings) -> int:
    """Start the broker (formatting its storage on first use) and return its pid at once."""
    current = pid(settings)
    if processes.alive(current):
        assert current is not None
        return current
    format_storage(settings)
    heap = settings.kafka_heap
    argv = [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_HOME / 'log4j2.properties'}",
        *exporters.kafka_agent_args(settings),  # JMX metrics for Prometheus, when fetched
        "-cp",
        _classpath(),
        "kafka.Kafka",
        str(broker_dir(settings) / "server.properties"),
    ]
    return processes.spawn(settings, NAME, argv)


def wait_ready(settings: Settings, timeout: float = 60.0) -> None:
    from confluent_kafka.admin import AdminClient

    def answers() -> bool:
        if not processes.port_open(settings.kafka_port):
            return False
        try:
            admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
            admin.list_topics(timeout=2)
            return True
        except Exception:
            return False

    processes.wait_until(answers, timeout, "kafka", pid(settings))


def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create the configured topics explicitly; grow partitions where the configuration asks for more."""
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    wanted = settings.topics()
    existing = admin.list_topics(timeout=10).topics
    to_create = [
        NewTopic(name, num_partitions=count, replication_factor=settings.topic_replication)
        for name, count in wanted.items()
        if name not in existing
    ]
    if to_create:
        for future in admin.create_topics(to_create, operation_timeout=30).values():
            future.result()
    to_grow = [
        NewPartitions(name, count)
        for name, count in wanted.items()
        if name in existing and len(existing[name].partitions) < count
    ]
    if to_grow:
        for future in admin.create_partitions(to_grow).values():
            future.result()
    return wanted


def stop(settings: Settings) -> None:
    # Exit status 143 after SIGTERM is a clean stop for Kafka.
    processes.stop(settings, NAME, timeout=30)
