"""``shopstream backup`` / ``restore``: the data that survives the machine.

A backup is a folder:

- ``<service>.dump``: ``pg_dump --format=custom`` of each service's database (PostgreSQL's own tool;
  ``pg_restore`` reads it back);
- ``kafka/<topic>.jsonl``: every message still in each event topic, partition by partition in offset
  order (key, value, headers), so events published but not yet consumed are not lost with the disk;
- ``auth/``: the local issuer's signing key, its JWKS and the service credential, when the
  platform is its own issuer (files kept 0600: the backup folder is as secret as the key), so the
  tokens issued before the backup are still accepted after a restore;
- ``manifest.json``: the topics (partitions, first offsets) and every consumer group's committed
  offsets, which are what lets the consumers resume exactly where they were.

While it is taken, the relays and consumers are paused (stopped under supervisord, started again
afterwards): nothing moves between the databases and Kafka, so the dumps, the topics and the
offsets describe one moment. The HTTP instances keep answering; an order placed during the backup
is in it or not, whole (its outbox row is in the same transaction). A request in sync mode that
straddles the two dumps can leave the product database a step ahead of the order database; for a
backup that must be exact, take it while no client writes.

``restore`` needs a fresh data folder (``SHOPSTREAM_DATA_DIR``): it starts PostgreSQL and Kafka,
restores each database, creates the topics with their partition counts, writes the messages back
into the same partitions in the same order, sets each group's offsets (shifted by the partition's
first offset, since the fresh log starts at 0), then runs ``up``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream_tools.runtime import (
    kafka_broker,
    platform,
    postgres,
    processes,
    supervision,
    topology,
)


def _pg_tool(name: str) -> str:
    return shutil.which(name) or str(postgres.bin_dir() / name)


def _paused(settings: Settings) -> list[str]:
    """The relays and consumers: the processes that move events between the databases and Kafka."""
    return [n for n in supervision.names(settings) if n.endswith("-relay") or "-consume" in n]


def _admin(settings: Settings) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": settings.kafka_servers})


def _group_offsets(settings: Settings) -> dict[str, dict[str, dict[str, int]]]:
    from confluent_kafka import ConsumerGroupTopicPartitions

    admin = _admin(settings)
    groups = [g.group_id for g in admin.list_consumer_groups().result().valid]
    found: dict[str, dict[str, dict[str, int]]] = {}
    for group in groups:
        request = [ConsumerGroupTopicPartitions(group)]
        answer = admin.list_consumer_group_offsets(request)[group].result()
        for tp in answer.topic_partitions:
            if tp.offset >= 0:
                found.setdefault(group, {}).setdefault(tp.topic, {})[str(tp.partition)] = tp.offset
    return found


def _b64(data: Any) -> str:
    return base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()


def _record(partition: int, msg: Any) -> dict[str, Any]:
    key = msg.key()
    headers: list[tuple[str, Any]] = msg.headers() or []
    return {
        "p": partition,
        "k": _b64(key) if key is not None else None,
        "v": _b64(msg.value() or b""),
        "h": [[name, _b64(value or b"")] for name, value in headers],
    }


def _dump_topic(settings: Settings, topic: str, partitions: int, out: Path) -> dict[str, int]:
    """Every message of ``topic`` into ``out``; the first offset of each partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka_servers, "group.id": "shopstream-backup",
                         "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    first: dict[str, int] = {}
    try:
        with out.open("w") as file:
            for partition in range(partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
                first[str(partition)] = low
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                position = low
                while position < high:
                    msg = consumer.poll(5)
                    if msg is None or msg.error():
                        continue
                    position = (msg.offset() or 0) + 1
                    file.write(json.dumps(_record(partition, msg)) + "\n")
    finally:
        consumer.close()
    return first


def backup(
    settings: Settings, folder: Path, log: Callable[[str], object] = print
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=False)
    (folder / "kafka").mkdir()
    paused = _paused(settings)
    for name in paused:
        processes.stop(settings, name)
    try:
        manifest: dict[str, Any] = {"taken_at": time.time(), "databases": [], "topics": {}}
        manifest["groups"] = _group_offsets(settings)
        for spec in topology.specs():
            target = folder / f"{spec.name}.dump"
            subprocess.run([_pg_tool("pg_dump"), "--format=custom", f"--file={target}",
                            *postgres.login_args(settings, spec.name)],
                           check=True, env=postgres.libpq_env(settings))  # fmt: skip
            manifest["databases"].append(spec.name)
            log(f"database  {spec.name}: {target.stat().st_size / 1024:.0f} kB")
        metadata = _admin(settings).list_topics(timeout=10).topics
        for topic, meta in sorted(metadata.items()):
            if topic.startswith("__"):
                continue
            partitions = len(meta.partitions)
            first = _dump_topic(settings, topic, partitions, folder / "kafka" / f"{topic}.jsonl")
            manifest["topics"][topic] = {"partitions": partitions, "first_offsets": first}
        log(
            f"kafka     {len(manifest['topics'])} topics, {len(manifest['groups'])} consumer groups"
        )
        manifest["auth"] = _copy_auth(settings.data_path / "auth", folder / "auth")
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    finally:
        for spec in topology.specs():
            platform.start_relay(settings, spec.name)
            platform.start_workers(settings, spec)
    return manifest


def _copy_auth(source: Path, target: Path) -> list[str]:
    if not source.is_dir():  # an outside issuer (OIDC): nothing of it lives in the data folder
        return []
    target.mkdir(mode=0o700, parents=True, exist_ok=True)  # restore: PostgreSQL's passwords are in it
    names = []
    for file in sorted(p for p in source.iterdir() if p.is_file() and p.suffix != ".tmp"):
        shutil.copy2(file, target / file.name)
        (target / file.name).chmod(0o600)
        names.append(file.name)
    return names


def _restore_topics(settings: Settings, folder: Path, manifest: dict[str, Any]) -> int:
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    admin = _admin(settings)
    existing = admin.list_topics(timeout=10).topics
    create = [NewTopic(t, num_partitions=m["partitions"], replication_factor=settings.topic_replication)
              for t, m in manifest["topics"].items() if t not in existing]  # fmt: skip
    if create:
        for future in admin.create_topics(create, operation_timeout=30).values():
            future.result()
    producer = Producer({"bootstrap.servers": settings.kafka_servers, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 20})  # fmt: skip
    count = 0
    for topic in manifest["topics"]:
        with (folder / "kafka" / f"{topic}.jsonl").open() as file:
            for line in file:
                row = json.loads(line)
                producer.produce(
                    topic, partition=row["p"], value=base64.b64decode(row["v"]),
                    key=base64.b64decode(row["k"]) if row["k"] is not None else None,
                    headers=[(k, base64.b64decode(v)) for k, v in row["h"]] or None,
                )  # fmt: skip
                count += 1
                if count % 10000 == 0:
                    producer.flush()
    if producer.flush(60) != 0:
        raise RuntimeError("kafka: messages not acknowledged while restoring")
    return count


def _restore_offsets(settings: Settings, manifest: dict[str, Any]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    admin = _admin(settings)
    for group, topics in manifest["groups"].items():
        partitions = [
            TopicPartition(topic, int(p), offset - manifest["topics"][topic]["first_offsets"][p])
            for topic, offsets in topics.items() if topic in manifest["topics"]
            for p, offset in offsets.items()
        ]  # fmt: skip
        if partitions:
            request = [ConsumerGroupTopicPartitions(group, partitions)]
            admin.alter_consumer_group_offsets(request)[group].result()


def restore(settings: Settings, folder: Path, log: Callable[[str], object] = print) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    if postgres.initialised(settings) or topology.instance_counts(settings):
        raise RuntimeError(f"{settings.data_path} is not fresh: restore into an empty data folder")
    postgres.start(settings)
    kafka_broker.start(settings)
    for service in manifest["databases"]:
        # as the owner role, like the migrations: it owns the tables, the service role uses them
        subprocess.run([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error",
                        f"--role={settings.database_owner(service)}",
                        *postgres.login_args(settings, service), str(folder / f"{service}.dump")],
                       check=True, env=postgres.libpq_env(settings))  # fmt: skip
        log(f"database  {service} restored")
    kafka_broker.wait_ready(settings)
    count = _restore_topics(settings, folder, manifest)
    _restore_offsets(settings, manifest)
    log(f"kafka     {count} messages, offsets of {len(manifest['groups'])} consumer groups")
    if manifest.get("auth"):
        _copy_auth(folder / "auth", settings.data_path / "auth")
        log(f"auth      the local issuer's keys ({', '.join(manifest['auth'])})")
    platform.up(settings, log)
