"""A real Apache Kafka broker (KRaft, broker and controller in one JVM) from its Maven Central jars.

The jars are fetched by ``infra/kafka/pom.xml`` into ``infra/kafka/libs``; the broker's log
directories live under the data folder. Kafka's own command-line tools run through ``tool()``.
"""

from __future__ import annotations

import concurrent.futures
import logging
import subprocess
from pathlib import Path

from shopstream import kafka
from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import exporters, processes, supervision

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

log = logging.getLogger(__name__)


def nodes(settings: Settings) -> range:
    return range(1, max(1, settings.kafka_brokers) + 1)


def node_name(node: int) -> str:
    return NAME if node == 1 else f"{NAME}-{node}"


def broker_port(settings: Settings, node: int = 1) -> int:
    return settings.kafka_port + (node - 1) * settings.kafka_broker_port_step


def controller_port(settings: Settings, node: int = 1) -> int:
    return settings.kafka_controller_port + (node - 1) * settings.kafka_broker_port_step


def broker_dir(settings: Settings, node: int = 1) -> Path:
    return settings.data_path / node_name(node)


def _classpath() -> str:
    if not any(LIBS.glob("kafka_2.13-*.jar")):
        raise RuntimeError("Kafka jars missing: run scripts/bootstrap.sh")
    # java expands the quoted glob itself.
    return str(LIBS) + "/*"


def server_properties(settings: Settings, node: int = 1) -> str:
    logs = broker_dir(settings, node) / "logs"
    c, b = controller_port(settings, node), broker_port(settings, node)
    voters = ",".join(f"{n}@127.0.0.1:{controller_port(settings, n)}" for n in nodes(settings))
    replicas = len(nodes(settings))
    # A cluster of three keeps every record on all of them and acknowledges a write (acks=all)
    # once two have it, so one broker may die without losing an acknowledged event.
    min_isr = 2 if replicas >= 3 else 1
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{b}",
            "inter.broker.listener.name=PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={logs}",
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={min_isr}",
            "unclean.leader.election.enable=false",
            # a dead broker is noticed in 3 s rather than 9 s (measured failover 2.9 s vs 9.0 s)
            *(
                ["broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500"]
                if replicas > 1
                else []
            ),
            "num.partitions=3",
            "auto.create.topics.enable=false",
            f"offsets.topic.replication.factor={replicas}",
            "offsets.topic.num.partitions=12",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={min_isr}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={min_isr}",
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


def formatted(settings: Settings, node: int = 1) -> bool:
    return (broker_dir(settings, node) / "logs" / "meta.properties").exists()


def _cluster_id(settings: Settings) -> str:
    """One id for every node of the cluster, kept beside node 1's logs."""
    path = broker_dir(settings) / "cluster.id"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = subprocess.run(_java(TOOLS["storage"], "random-uuid"), check=True,
                              capture_output=True, text=True)  # fmt: skip
        path.write_text(made.stdout.strip())
    return path.read_text().strip()


def format_storage(settings: Settings, node: int = 1) -> None:
    home = broker_dir(settings, node)
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(server_properties(settings, node))
    if formatted(settings, node):
        return
    subprocess.run(
        _java(TOOLS["storage"], "format", "-t", _cluster_id(settings), "-c", str(props),
              "--ignore-formatted"),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def pid(settings: Settings, node: int = 1) -> int | None:
    return processes.read_pid(settings, node_name(node))


def running(settings: Settings) -> bool:
    return processes.alive(pid(settings))


def start(settings: Settings) -> int:
    """Start every broker not running (formatting storage on first use); node 1's pid, at once."""
    for node in nodes(settings):
        if not processes.alive(pid(settings, node)):
            start_node(settings, node)
    return pid(settings) or 0


def start_node(settings: Settings, node: int) -> int:
    format_storage(settings, node)
    heap = settings.kafka_heap
    argv = [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={KAFKA_HOME / 'log4j2.properties'}",
        # JMX metrics for Prometheus, when fetched: node 1's (one agent port)
        *(exporters.kafka_agent_args(settings) if node == 1 else []),
        "-cp",
        _classpath(),
        "kafka.Kafka",
        str(broker_dir(settings, node) / "server.properties"),
    ]
    # under supervisord: a broker that dies is started again (and rejoins the cluster)
    return supervision.add(settings, node_name(node), argv)


def wait_ready(settings: Settings, timeout: float = 60.0) -> None:
    from confluent_kafka.admin import AdminClient

    def answers() -> bool:
        if not all(processes.port_open(broker_port(settings, n)) for n in nodes(settings)):
            return False
        try:
            admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
            return len(admin.list_topics(timeout=2).brokers) == len(nodes(settings))
        except Exception:
            return False

    log = supervision.log_file(settings, node_name(1))
    processes.wait_until(answers, timeout, "kafka", pid(settings), log=log)


class TopicPartitionsMismatch(RuntimeError):
    """An existing topic has other partitions than the configuration asks for."""


def ensure_topics(settings: Settings) -> dict[str, int]:
    """Create the configured topics that are missing; refuse to touch a topic that differs.

    Adding partitions to a topic moves keys to other partitions, so an order's events could be
    read out of order while the old partitions drain: that is a migration an operator runs
    deliberately, never a side effect of `migrate`.
    """
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka.admin_config(settings))
    wanted = settings.topics()
    existing = admin.list_topics(timeout=10).topics
    differ = {
        name: (len(existing[name].partitions), count)
        for name, count in wanted.items()
        if name in existing and len(existing[name].partitions) != count
    }
    if any(has < asks for has, asks in differ.values()):
        raise TopicPartitionsMismatch(partitions_advice(settings, differ))
    for name, (has, asks) in differ.items():
        # Kafka cannot take partitions away; a topic made with more keeps them and keeps its
        # keys where they are (a data folder from before the default became 3, say).
        log.warning("%s keeps its %d partitions (SHOPSTREAM_TOPIC_PARTITIONS asks for %d)",
                    name, has, asks)  # fmt: skip
    to_create = [
        NewTopic(name, num_partitions=count, replication_factor=settings.topic_replication)
        for name, count in wanted.items()
        if name not in existing
    ]
    if to_create:
        for future in admin.create_topics(to_create, operation_timeout=30).values():
            future.result()
    return wanted


def partitions_advice(settings: Settings, differ: dict[str, tuple[int, int]]) -> str:
    lines = [
        f"{name} has {has} partitions, SHOPSTREAM_TOPIC_PARTITIONS asks for {asks}"
        for name, (has, asks) in sorted(differ.items())
    ]
    return (
        "migrate refuses to change existing topics:\n  "
        + "\n  ".join(lines)
        + "\nAdding partitions moves keys to other partitions and breaks per-key order (an order's"
        " events could be applied out of order). Either set SHOPSTREAM_TOPIC_PARTITIONS back to"
        " what the topics have, or migrate deliberately: stop the relays, let the consumers drain"
        " the topics (lag 0), then run"
        f" `kafka-topics.sh --bootstrap-server {settings.kafka_servers} --alter --topic <name>"
        " --partitions <n>`, raise the consumers' maximum replicas to match, and start the relays"
        ' again (aws/README.md, "Changing the partitions of a topic").'
    )


def stop(settings: Settings) -> None:
    """Every broker at once: stopped one by one, the last would wait minutes in controlled
    shutdown for a quorum that is gone. Exit status 143 after SIGTERM is a clean stop for Kafka."""
    names = [node_name(n) for n in nodes(settings)]
    names += [p.stem for p in processes.run_dir(settings).glob(f"{NAME}-*.pid")]  # a former HA run
    names += [n for n in supervision.names(settings) if n.startswith(f"{NAME}-")]
    names = list(dict.fromkeys(names))
    with concurrent.futures.ThreadPoolExecutor(len(names)) as pool:
        list(pool.map(lambda name: processes.stop(settings, name, 30), names))
