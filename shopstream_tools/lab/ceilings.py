"""Ceilings, measured in the same run on the same machine as the figures they divide:

* nginx answering a fixed response (the gateway's status port, ``/fixed``), loaded by wrk with
  shopstream_tools.bench's script: what the gateway could do with no service behind it;
* pgbench running the services' SQL on the same PostgreSQL: the read mix (shopstream_tools.bench's
  by-id and search scripts, weighted like the Locust mix) and the order path (the statements one
  order costs through the saga, on scratch copies of the tables);
* Kafka's ProducerPerformance on a topic of the same partition count, order-event-sized records.
"""

from __future__ import annotations

import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream.config import Settings
from shopstream_tools.bench import (
    BENCH_SCHEMA,
    WRK_DIR,
    by_id_script,
    parse_pgbench,
    parse_wrk,
    price_windows,
    search_script,
)
from shopstream_tools.lab.load import Child, loadgen_record

WRK_THREADS = 2
WRK_CONNECTIONS = 64
PGBENCH_CLIENTS = 16
PGBENCH_THREADS = 2
CEILING_SCHEMA = "lab_ceiling"
ORDER_EVENT_BYTES = 700  # an OrderPlaced envelope with two lines, as JSON


@dataclass
class CeilingPlan:
    seconds: float
    kafka_records: int


def _noop(pid: int) -> None:
    return None


def nginx_fixed(settings: Settings, seconds: float, workdir: Path, stop: threading.Event) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk is missing: run scripts/bootstrap.sh")
    url = f"http://127.0.0.1:{settings.gateway_status_port}"
    argv = [
        wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s",
        "--latency", "-s", str(WRK_DIR / "fixed.lua"), url,
    ]  # fmt: skip
    child = Child(argv, workdir / "ceiling-nginx.txt")
    done = child.run(stop, _noop)
    result = parse_wrk(child.log.read_text())
    errors = sum(result.errors.values())
    return {
        "name": "nginx-fixed",
        "unit": "req/s",
        "rate": result.rate,
        "latency_ms": result.latency_ms,
        "errors": errors,
        "command": " ".join(argv),
        "loadgen": loadgen_record("wrk", done, done.cores >= 0.9 * WRK_THREADS, ""),
    }


# --- pgbench -------------------------------------------------------------------------------------
async def prepare_pgbench(settings: Settings) -> int:
    """The n -> product id mapping pgbench's read scripts draw from (shopstream_tools.bench's schema),
    and scratch copies of the tables the order path writes. Returns the products mapped."""
    import asyncpg

    # the admin: the services' own role may create nothing (docs/security.md)
    conn = await asyncpg.connect(settings.admin_database_url("product"))
    try:
        await conn.execute(
            f"CREATE SCHEMA IF NOT EXISTS {BENCH_SCHEMA};"
            f" DROP TABLE IF EXISTS {BENCH_SCHEMA}.product_ids;"
            f" CREATE TABLE {BENCH_SCHEMA}.product_ids (n integer PRIMARY KEY, id uuid NOT NULL);"
            f" INSERT INTO {BENCH_SCHEMA}.product_ids (n, id)"
            "  SELECT row_number() OVER (ORDER BY sku), id FROM products;"
            f" ANALYZE {BENCH_SCHEMA}.product_ids"
        )
        count = int(await conn.fetchval(f"SELECT count(*) FROM {BENCH_SCHEMA}.product_ids"))
        await conn.execute(ORDER_PATH_SCHEMA)
    finally:
        await conn.close()
    return count


async def drop_pgbench(settings: Settings) -> None:
    import asyncpg

    conn = await asyncpg.connect(settings.admin_database_url("product"))
    try:
        await conn.execute(
            f"DROP SCHEMA IF EXISTS {BENCH_SCHEMA} CASCADE; DROP SCHEMA IF EXISTS {CEILING_SCHEMA} CASCADE"
        )
    finally:
        await conn.close()


# Scratch tables shaped like the ones one order writes: the order's event stream and projection,
# the stock, the reservation and the outbox (no consumer keeps a record of applied events).
ORDER_PATH_SCHEMA = f"""
DROP SCHEMA IF EXISTS {CEILING_SCHEMA} CASCADE;
CREATE SCHEMA {CEILING_SCHEMA};
CREATE TABLE {CEILING_SCHEMA}.order_events (
    order_id uuid NOT NULL, version integer NOT NULL, event_id uuid NOT NULL,
    type text NOT NULL, data jsonb NOT NULL, occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (order_id, version));
CREATE TABLE {CEILING_SCHEMA}.orders (
    id uuid PRIMARY KEY, customer_id uuid NOT NULL, status text NOT NULL, version integer NOT NULL,
    lines jsonb NOT NULL, history jsonb NOT NULL, timestamps jsonb NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE INDEX ON {CEILING_SCHEMA}.orders (customer_id, created_at DESC, id DESC);
CREATE TABLE {CEILING_SCHEMA}.products (
    n integer PRIMARY KEY, id uuid NOT NULL UNIQUE, stock integer NOT NULL CHECK (stock >= 0),
    version integer NOT NULL DEFAULT 1, price_cents bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
INSERT INTO {CEILING_SCHEMA}.products (n, id, stock, price_cents)
    SELECT g, gen_random_uuid(), 1000000000, 1999 FROM generate_series(1, 1000) g;
CREATE TABLE {CEILING_SCHEMA}.reservations (
    order_id uuid NOT NULL, product_id uuid NOT NULL, quantity integer NOT NULL,
    unit_price_cents bigint NOT NULL, status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (order_id, product_id));
CREATE TABLE {CEILING_SCHEMA}.outbox (LIKE public.outbox INCLUDING ALL);
"""

_PAYLOAD = "'" + '{"lines":[{"product_id":"00000000-0000-0000-0000-000000000000","quantity":1}],' + (
    '"shipping_address":{"name":"Lab Customer","line1":"1 Benchmark Way","city":"Lisbon"}}' + "'"
)


def order_path_script() -> str:
    """One order through the saga, statement for statement: accepted (event, projection,
    outbox), stock reserved (conditional UPDATE, reservation, two outbox rows, consumer record),
    paid and confirmed (two events, projection, outbox, consumer record), reservation committed,
    and the relay marking the outbox rows published."""
    s = CEILING_SCHEMA
    return f"""\\set p random(1, 1000)
BEGIN;
SELECT gen_random_uuid() AS oid, gen_random_uuid() AS cid \\gset
INSERT INTO {s}.order_events (order_id, version, event_id, type, data, occurred_at) VALUES (:oid, 1, gen_random_uuid(), 'OrderPlaced', {_PAYLOAD}, now());
INSERT INTO {s}.orders VALUES (:oid, :cid, 'PENDING', 1, {_PAYLOAD}, '[]', '{{}}', now(), now());
INSERT INTO {s}.outbox (event_id, topic, message_key, event_type, payload) VALUES (gen_random_uuid(), 'order-events', :oid, 'OrderPlaced', convert_to({_PAYLOAD}, 'UTF8'));
COMMIT;
BEGIN;
UPDATE {s}.products SET stock = stock - 1, version = version + 1, updated_at = clock_timestamp() WHERE n = :p AND stock >= 1 RETURNING id AS pid, stock, version, price_cents \\gset
INSERT INTO {s}.reservations (order_id, product_id, quantity, unit_price_cents, status) VALUES (:oid, :pid, 1, 1999, 'held');
INSERT INTO {s}.outbox (event_id, topic, message_key, event_type, payload) VALUES (gen_random_uuid(), 'product-events', :pid, 'StockChanged', convert_to({_PAYLOAD}, 'UTF8'));
INSERT INTO {s}.outbox (event_id, topic, message_key, event_type, payload) VALUES (gen_random_uuid(), 'stock-events', :oid, 'StockReserved', convert_to({_PAYLOAD}, 'UTF8'));
COMMIT;
BEGIN;
INSERT INTO {s}.order_events (order_id, version, event_id, type, data, occurred_at) VALUES (:oid, 2, gen_random_uuid(), 'StockReserved', {_PAYLOAD}, now());
INSERT INTO {s}.order_events (order_id, version, event_id, type, data, occurred_at) VALUES (:oid, 3, gen_random_uuid(), 'PaymentAuthorized', {_PAYLOAD}, now());
INSERT INTO {s}.order_events (order_id, version, event_id, type, data, occurred_at) VALUES (:oid, 4, gen_random_uuid(), 'OrderConfirmed', {_PAYLOAD}, now());
UPDATE {s}.orders SET status = 'CONFIRMED', version = 4, updated_at = now() WHERE id = :oid;
INSERT INTO {s}.outbox (event_id, topic, message_key, event_type, payload) VALUES (gen_random_uuid(), 'order-events', :oid, 'OrderConfirmed', convert_to({_PAYLOAD}, 'UTF8'));
COMMIT;
BEGIN;
UPDATE {s}.reservations SET status = 'committed', updated_at = clock_timestamp() WHERE order_id = :oid AND status = 'held';
COMMIT;
DELETE FROM {s}.outbox WHERE message_key IN (:oid, :pid);
"""


def write_pgbench_scripts(folder: Path) -> dict[str, list[Path]]:
    """The read scripts (by id, and one per search window) and the order path, as files."""
    folder.mkdir(parents=True, exist_ok=True)
    by_id = folder / "pgbench-by-id.sql"
    by_id.write_text(by_id_script())
    searches = []
    for i, window in enumerate(price_windows()):
        path = folder / f"pgbench-search-{i:02d}.sql"
        path.write_text(search_script(window))
        searches.append(path)
    order = folder / "pgbench-order-path.sql"
    order.write_text(order_path_script())
    return {"by_id": [by_id], "search": searches, "order_path": [order]}


def pgbench(
    settings: Settings,
    name: str,
    scripts: list[tuple[Path, int]],
    seconds: float,
    products: int,
    workdir: Path,
    stop: threading.Event,
    unit: str = "tx/s",
) -> dict[str, Any]:
    """pgbench with weighted scripts (the same mix as the HTTP load); protocol prepared, like
    asyncpg."""
    from shopstream_tools.runtime import postgres

    binary = shutil.which("pgbench") or str(postgres.bin_dir() / "pgbench")
    argv = [
        binary,
        # the admin, who made the scratch tables; its password from PGPASSFILE (libpq_env)
        *postgres.server_args(settings), "-U", settings.postgres_admin_user,
        "-n", "-M", "prepared",
        "-c", str(PGBENCH_CLIENTS), "-j", str(PGBENCH_THREADS),
        "-T", str(max(1, round(seconds))),
        "-D", f"products={max(products, 1)}",
    ]  # fmt: skip
    for path, weight in scripts:
        argv += ["-f", f"{path}@{weight}"]
    argv.append("product")
    env = postgres.libpq_env(settings)  # the primary, in the HA profile
    child = Child(argv, workdir / f"ceiling-{name}.txt", env)
    done = child.run(stop, _noop)
    text = child.log.read_text(errors="replace")
    tps, processed, failed = parse_pgbench(text)
    latency = re.search(r"^latency average = ([\d.]+) ms", text, re.MULTILINE)
    return {
        "name": name,
        "unit": unit,
        "rate": tps,
        "transactions": processed,
        "errors": failed,
        "latency_ms": {"mean": float(latency.group(1))} if latency else {},
        "command": " ".join(argv),
        "loadgen": loadgen_record("pgbench", done, False, ""),
    }


# --- Kafka ---------------------------------------------------------------------------------------
_PERF = re.compile(
    r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, "
    r"([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th"
)


def parse_producer_perf(output: str) -> dict[str, Any]:
    """The summary line ProducerPerformance prints last."""
    found = _PERF.findall(output)
    if not found:
        raise ValueError("ProducerPerformance printed no summary line")
    sent, rate, mb, avg, worst, p50, p95, p99, p999 = found[-1]
    return {
        "records": int(sent),
        "rate": float(rate),
        "mb_per_s": float(mb),
        "latency_ms": {
            "mean": float(avg), "max": float(worst), "p50": float(p50),
            "p95": float(p95), "p99": float(p99), "p99.9": float(p999),
        },
    }  # fmt: skip


def ensure_perf_topic(settings: Settings, partitions: int) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"lab-perf-{partitions}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    if name not in admin.list_topics(timeout=10).topics:
        futures = admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=30)
        for future in futures.values():
            future.result()
    return name


def kafka_producer(
    settings: Settings, partitions: int, records: int, workdir: Path, stop: threading.Event
) -> dict[str, Any]:
    from shopstream_tools.runtime import kafka_broker

    topic = ensure_perf_topic(settings, partitions)
    argv = kafka_broker.tool(
        "producer-perf-test",
        "--topic", topic,
        "--num-records", str(records),
        "--record-size", str(ORDER_EVENT_BYTES),
        "--throughput", "-1",
        "--producer-props", f"bootstrap.servers={settings.kafka_servers}", "acks=all",
        "enable.idempotence=true", "linger.ms=5",
    )  # fmt: skip
    child = Child(argv, workdir / f"ceiling-kafka-{partitions}.txt")
    done = child.run(stop, _noop)
    parsed = parse_producer_perf(child.log.read_text(errors="replace"))
    return {
        "name": f"kafka-producer-{partitions}p",
        "unit": "msg/s",
        "partitions": partitions,
        "command": " ".join(argv),
        **parsed,
        "loadgen": loadgen_record("ProducerPerformance", done, False, ""),
    }
