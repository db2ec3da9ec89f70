"""The Grafana dashboards, as code: `python infra/grafana/dashboards.py` writes them as provisioned JSON
into deploy/grafana/dashboards/ (mounted by compose and Kubernetes). tests/observability checks that
the JSON files are what this produces and evaluates every panel's PromQL against the test platform's
Prometheus under traffic. The console's /dashboards page shows the same panels live.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
# Kustomize reads nothing outside its root, so Kubernetes provisions a copy (tests/deploy checks it).
K8S_COPY = OUT.parents[1] / "k8s" / "monitoring" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}


@dataclass
class Panel:
    title: str
    exprs: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    description: str = ""
    width: int = 12


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel] = field(default_factory=list)


def p(title: str, expr: str, legend: str, unit: str, **kw: object) -> Panel:
    return Panel(title, [(expr, legend)], unit, **kw)  # type: ignore[arg-type]


SERVICE_OVERVIEW = Dashboard(
    "shopstream-service-overview",
    "shopstream / service overview",
    "Rate, errors and duration per service and route; the gateway; targets.",
    [
        p("Requests per second by service", "service:http_requests:rate1m", "{{service}}", "reqps"),
        p("p99 latency by service", "service:http_request_duration_seconds:p99_1m", "{{service}}", "s"),
        p("5xx error ratio by service", "service:http_request_errors:ratio_rate1m", "{{service}}", "percentunit"),
        p(
            "Requests per second by route",
            "topk(15, service_route:http_requests:rate1m)",
            "{{service}} {{method}} {{route}}",
            "reqps",
        ),
        p(
            "p99 latency by route",
            "topk(15, service_route:http_request_duration_seconds:p99_1m)",
            "{{service}} {{method}} {{route}}",
            "s",
        ),
        p(
            "Responses by status class",
            'sum by (service, class) (label_replace(rate(http_requests_total[1m]), "class", "${1}xx", "status", "(.).."))',
            "{{service}} {{class}}",
            "reqps",
        ),
        p("Gateway requests per second (nginx)", "rate(nginx_http_requests_total[1m])", "gateway", "reqps"),
        p("Gateway connections (nginx)", "nginx_connections_active", "active", "suffix: connections"),
        p(
            "Product cache hit ratio",
            'sum(rate(product_cache_lookups_total{result="hit"}[5m])) / sum(rate(product_cache_lookups_total[5m]))',
            "hit ratio",
            "percentunit",
        ),
        p(
            "Product cache invalidation lag p99",
            "histogram_quantile(0.99, sum by (le) (rate(product_cache_invalidation_lag_seconds_bucket[5m])))",
            "p99",
            "s",
        ),
        p("Targets up", "up", "{{job}} {{process}}", "suffix: targets"),
        p("Firing alerts", 'count by (alertname) (ALERTS{alertstate="firing"}) or vector(0)', "{{alertname}}", "suffix: alerts"),
    ],
)

ORDER_PIPELINE = Dashboard(
    "shopstream-order-pipeline",
    "shopstream / order pipeline",
    "Orders by state and mode, saga stages, compensations, reservations held, outbox, Kafka lag and"
    " dead letters.",
    [
        p(
            "Orders in flight by status and mode",
            "max by (status, mode) (orders_in_flight)",
            "{{status}} {{mode}}", "suffix: orders",
            # every order consumer process reports the whole projection: a sum would multiply it
            description="From the orders projection, as each order consumer process reads it;"
            " ended orders are counted by order_transitions_total.",
        ),
        p(
            "Async orders refused per second (backlog full)",
            "sum(rate(orders_shed_total[1m]))",
            "refused", "ops",
            description="POST /orders answers 503 + Retry-After to new async orders while"
            " order_backlog_limit are in flight; the order instances' count is orders_async_backlog.",
        ),
        p(
            "Orders entering a status per second",
            "sum by (status, mode) (rate(order_transitions_total[5m]))",
            "{{status}} {{mode}}",
            "ops",
        ),
        p(
            "Saga stage reached, p95 since accepted",
            "histogram_quantile(0.95, sum by (stage, mode, le) (rate(order_stage_seconds_bucket[5m])))",
            "{{stage}} {{mode}}",
            "s",
        ),
        p(
            "Saga step duration p95",
            "histogram_quantile(0.95, sum by (step, mode, le) (rate(order_step_seconds_bucket[5m])))",
            "{{step}} {{mode}}",
            "s",
        ),
        p(
            "End to end p99 by outcome",
            "histogram_quantile(0.99, sum by (mode, outcome, le) (rate(order_end_to_end_seconds_bucket[5m])))",
            "{{mode}} {{outcome}}",
            "s",
        ),
        p(
            "Compensations by reason (last hour)",
            "sum by (action, reason) (increase(order_compensations_total[1h]))",
            "{{action}} {{reason}}", "suffix: compensations",
        ),
        p(
            "Reservations held",
            "max(product_reservations_held)",
            "orders holding stock", "suffix: orders",
            description="Read from the database by one product consumer; max, not sum: during a"
            " hand-over two may briefly report the same figure.",
        ),
        p(
            "Oldest held reservation",
            "max(product_reservation_oldest_held_age_seconds)",
            "age",
            "s",
            description="Seconds while the saga runs; minutes mean an order ended without giving"
            " its stock back, or the saga stopped (alert ReservationHeldTooLong).",
        ),
        p("Outbox pending rows", "max by (service) (outbox_pending_events)", "{{service}}", "suffix: rows"),
        p("Outbox oldest pending age", "max by (service) (outbox_oldest_pending_age_seconds)", "{{service}}", "s"),
        p("Relay lag p99 (commit to Kafka ack)", "service:outbox_relay_lag_seconds:p99_1m", "{{service}}", "s"),
        p(
            "Events published per second by topic",
            "sum by (topic) (rate(outbox_events_published_total[1m]))",
            "{{topic}}",
            "ops",
        ),
        p("Events applied per second by group", "group:consumer_events_applied:rate1m", "{{group}}", "ops"),
        p("Consumer lag by group and topic", "group_topic:kafka_consumer_lag_messages:sum", "{{group}} {{topic}}", "suffix: messages"),
        p(
            "Messages dead-lettered by topic (last hour)",
            "sum by (topic) (increase(consumer_dead_lettered_total[1h]))",
            "{{topic}}", "suffix: messages",
        ),
        p("Dead-letter topic: messages waiting", 'topic:kafka_log_messages:sum{topic="dead-letter"}', "waiting", "suffix: messages"),
    ],
)

KAFKA = Dashboard(
    "shopstream-kafka",
    "shopstream / Kafka",
    "The broker through the Prometheus JMX exporter agent.",
    [
        p(
            "Messages in per second by topic",
            'sum by (topic) (rate(kafka_server_brokertopicmetrics_messagesin_total{topic!=""}[1m]))',
            "{{topic}}",
            "ops",
        ),
        p("Bytes in per second", 'sum(rate(kafka_server_brokertopicmetrics_bytesin_total{topic=""}[1m]))', "in", "Bps"),
        p("Bytes out per second", 'sum(rate(kafka_server_brokertopicmetrics_bytesout_total{topic=""}[1m]))', "out", "Bps"),
        p(
            "Requests per second by type",
            "topk(8, sum by (request) (rate(kafka_network_requests_total[1m])))",
            "{{request}}",
            "reqps",
        ),
        p(
            "Request time p99 (ms)",
            'kafka_network_request_total_time_ms{quantile="0.99"}',
            "{{request}}",
            "ms",
        ),
        p("Log size by topic", 'sum by (topic) (kafka_log_size{topic!~"__.*"})', "{{topic}}", "bytes"),
        p("Messages retained by topic", 'topic:kafka_log_messages:sum{topic!~"__.*"}', "{{topic}}", "suffix: messages"),
        p("Partitions", "kafka_server_replicamanager_partitioncount", "partitions", "suffix: partitions"),
        p("Under-replicated partitions", "kafka_server_replicamanager_underreplicatedpartitions", "under-replicated", "suffix: partitions"),
        p("Active controller", "kafka_controller_kafkacontroller_activecontrollercount", "active", "suffix: controllers"),
        p("JVM heap used", 'jvm_memory_used_bytes{job="kafka",area="heap"}', "heap", "bytes"),
        p("GC time per second", 'sum by (gc) (rate(jvm_gc_collection_seconds_sum{job="kafka"}[1m]))', "{{gc}}", "s"),
    ],
)

POSTGRESQL = Dashboard(
    "shopstream-postgresql",
    "shopstream / PostgreSQL",
    "The private cluster through the postgres exporter: one database per service.",
    [
        p("Up", "pg_up", "up", "suffix: up (1) / down (0)"),
        p("Connections by database", 'sum by (datname) (pg_stat_database_numbackends{datname=~"product|order"})', "{{datname}}", "suffix: connections"),
        p(
            "Commits per second",
            'sum by (datname) (rate(pg_stat_database_xact_commit{datname=~"product|order"}[1m]))',
            "{{datname}}",
            "ops",
        ),
        p(
            "Rollbacks per second",
            'sum by (datname) (rate(pg_stat_database_xact_rollback{datname=~"product|order"}[1m]))',
            "{{datname}}",
            "ops",
        ),
        p(
            "Buffer cache hit ratio",
            'sum by (datname) (rate(pg_stat_database_blks_hit{datname=~"product|order"}[5m])) / '
            '(sum by (datname) (rate(pg_stat_database_blks_hit{datname=~"product|order"}[5m])) + '
            'sum by (datname) (rate(pg_stat_database_blks_read{datname=~"product|order"}[5m])))',
            "{{datname}}",
            "percentunit",
        ),
        p(
            "Rows written per second",
            'sum by (datname) (rate(pg_stat_database_tup_inserted{datname=~"product|order"}[1m]) + '
            'rate(pg_stat_database_tup_updated{datname=~"product|order"}[1m]) + '
            'rate(pg_stat_database_tup_deleted{datname=~"product|order"}[1m]))',
            "{{datname}}",
            "ops",
        ),
        p("Database size", 'pg_database_size_bytes{datname=~"product|order"}', "{{datname}}", "bytes"),
        p("Deadlocks (last hour)", 'sum by (datname) (increase(pg_stat_database_deadlocks{datname=~"product|order"}[1h]))', "{{datname}}", "suffix: deadlocks"),
    ],
)

RESOURCES = Dashboard(
    "shopstream-resources",
    "shopstream / resources",
    "The machine (node exporter) and every process that reports itself: RSS, CPU, JVM heaps.",
    [
        p("CPU busy by mode", 'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))', "{{mode}}", "suffix: cores"),
        p("Load average (1m)", "node_load1", "load1", "suffix: runnable tasks"),
        p("Memory available", "node_memory_MemAvailable_bytes", "available", "bytes"),
        p("Resident memory by process", "sum by (process) (process_resident_memory_bytes)", "{{process}}", "bytes"),
        p("CPU by process", "sum by (process) (rate(process_cpu_seconds_total[1m]))", "{{process}}", "suffix: cores"),
        p("Open file descriptors by process", "sum by (process) (process_open_fds)", "{{process}}", "suffix: fds"),
        p("JVM heap used", 'sum by (process) (jvm_memory_used_bytes{area="heap"})', "{{process}}", "bytes"),
        p("Disk I/O time per second", "sum by (device) (rate(node_disk_io_time_seconds_total[1m]))", "{{device}}", "s"),
        p("Network received per second", "sum by (device) (rate(node_network_receive_bytes_total[1m]))", "{{device}}", "Bps"),
        p("Scrape duration by job", "max by (job) (scrape_duration_seconds)", "{{job}}", "s"),
    ],
)

DASHBOARDS = [SERVICE_OVERVIEW, ORDER_PIPELINE, KAFKA, POSTGRESQL, RESOURCES]


def render(d: Dashboard) -> dict[str, object]:
    panels = []
    for index, panel in enumerate(d.panels):
        x = (index % 2) * 12
        y = (index // 2) * 8
        panels.append(
            {
                "id": index + 1,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": DATASOURCE,
                "gridPos": {"h": 8, "w": panel.width, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
                    for i, (expr, legend) in enumerate(panel.exprs)
                ],
            }
        )
    return {
        "uid": d.uid,
        "title": d.title,
        "description": d.description + " Generated by infra/grafana/dashboards.py: edit that, not this.",
        "tags": ["shopstream", "provisioned"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "10s",
        "time": {"from": "now-30m", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def file_name(d: Dashboard) -> str:
    return d.uid.removeprefix("shopstream-") + ".json"


def rendered() -> dict[str, str]:
    return {file_name(d): json.dumps(render(d), indent=2) + "\n" for d in DASHBOARDS}


def main() -> int:
    for folder in (OUT, K8S_COPY):
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in rendered().items():
            (folder / name).write_text(text)
            print(f"wrote {folder / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
