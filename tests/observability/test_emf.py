"""CloudWatch Embedded Metric Format, checked against the specification's rules, and against what
the CloudFormation templates read.

The validator below encodes the EMF specification (root `_aws` with an integer millisecond
Timestamp and CloudWatchMetrics directives; each directive's Namespace, DimensionSets referencing
string members, at most 30 dimensions, at most 100 metric definitions, each naming a member that is
a number or an array of at most 100 numbers, units from CloudWatch's list).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from shopstream import emf


def spec_errors(doc: Any) -> list[str]:
    errors: list[str] = []
    if not isinstance(doc, dict):
        return ["root must be an object"]
    aws = doc.get("_aws")
    if not isinstance(aws, dict):
        return ["_aws must be an object"]
    if not isinstance(aws.get("Timestamp"), int) or aws["Timestamp"] < 10**12:
        errors.append("_aws.Timestamp must be an integer epoch in milliseconds")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*errors, "_aws.CloudWatchMetrics must be a non-empty array"]
    for d in directives:
        ns = d.get("Namespace")
        if not isinstance(ns, str) or not 1 <= len(ns) <= 1024:
            errors.append("Namespace must be a 1..1024 character string")
        dims = d.get("Dimensions")
        if not isinstance(dims, list):
            errors.append("Dimensions must be an array of dimension sets")
            dims = []
        for dimension_set in dims:
            if not isinstance(dimension_set, list) or len(dimension_set) > 30:
                errors.append("a dimension set is an array of at most 30 names")
                continue
            for name in dimension_set:
                if not isinstance(doc.get(name), str):
                    errors.append(f"dimension {name!r} must reference a string member")
        metrics = d.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > 100:
            errors.append("Metrics must be an array of at most 100 definitions")
            metrics = []
        for m in metrics:
            name = m.get("Name")
            if not isinstance(name, str) or not 1 <= len(name) <= 1024:
                errors.append("a metric Name must be a 1..1024 character string")
                continue
            if "Unit" in m and m["Unit"] not in emf.UNITS:
                errors.append(f"{name}: Unit {m['Unit']!r} is not a CloudWatch unit")
            if m.get("StorageResolution", 60) not in (1, 60):
                errors.append(f"{name}: StorageResolution must be 1 or 60")
            value = doc.get(name)
            numbers = value if isinstance(value, list) else [value]
            if isinstance(value, list) and len(value) > 100:
                errors.append(f"{name}: at most 100 values")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
                errors.append(f"{name}: member must be a number or an array of numbers")
    return errors


def test_request_metrics_flush_valid_documents() -> None:
    out = io.StringIO()
    metrics = emf.Metrics("shopstream", out, clock=lambda: 1_700_000_000.0)
    for status in (200, 200, 404, 503):
        metrics.record("order", "POST", "/orders", status, 0.012)
    metrics.record("product", "GET", "/products", 200, 0.003)
    assert metrics.flush() == 2
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    for doc in docs:
        assert spec_errors(doc) == [], doc
    order = next(d for d in docs if d["Service"] == "order")
    assert order["Route"] == "POST /orders"
    assert (order["RequestCount"], order["ServerErrorCount"], order["ClientErrorCount"]) == (4, 1, 1)
    assert order["Latency"] == [12.0] * 4
    assert order["_aws"]["Timestamp"] == 1_700_000_000_000
    directive = order["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "shopstream" and directive["Dimensions"] == [["Route", "Service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]}["Latency"] == "Milliseconds"
    # a flush empties the aggregate: nothing new, nothing written
    out.truncate(0)
    out.seek(0)
    assert metrics.flush() == 0 and out.getvalue() == ""


def test_latency_values_stay_within_the_limit() -> None:
    out = io.StringIO()
    metrics = emf.Metrics("shopstream", out)
    for i in range(1000):
        metrics.record("product", "GET", "/products/{id}", 200, i / 1000)
    metrics.flush()
    doc = json.loads(out.getvalue())
    assert doc["RequestCount"] == 1000 and len(doc["Latency"]) == 100
    assert spec_errors(doc) == []


def test_invalid_documents_are_refused() -> None:
    with pytest.raises(ValueError):
        emf.document("ns", {"Service": "x"}, {"Latency": (1.0, "Millis")})
    with pytest.raises(ValueError):
        emf.document("ns", {"Service": "x"}, {"Latency": ([1.0] * 101, "Milliseconds")})
    with pytest.raises(ValueError):
        emf.document("", {"Service": "x"}, {"Count": (1, "Count")})


def test_the_validator_catches_what_cloudwatch_would_reject() -> None:
    good = emf.document("shopstream", {"Service": "order"}, {"RequestCount": (3, "Count")})
    assert spec_errors(good) == []
    broken = json.loads(json.dumps(good))
    broken["_aws"]["Timestamp"] = "now"
    del broken["Service"]
    broken["RequestCount"] = "3"
    errors = spec_errors(broken)
    assert len(errors) == 3, errors


def test_off_unless_a_namespace_is_set() -> None:
    assert emf.configure("") is None
    emf.record("order", "GET", "/orders", 200, 0.01)  # a no-op, not an error


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The process's aggregator, as ``configure`` would install it, writing into a buffer; call
    the fixture's value to flush and read the documents back."""
    out = io.StringIO()
    metrics = emf.Metrics("shopstream", out, clock=lambda: 1_700_000_000.0)
    monkeypatch.setattr(emf, "_metrics", metrics)

    def flushed() -> list[dict[str, Any]]:
        metrics.flush()
        docs = [json.loads(line) for line in out.getvalue().splitlines()]
        out.truncate(0)
        out.seek(0)
        for doc in docs:
            assert spec_errors(doc) == [], doc
        return docs

    yield flushed


def one(docs: list[dict[str, Any]], metric: str, **dimensions: str) -> Any:
    """The value of ``metric`` in the one document with exactly these dimensions."""
    found = [
        d for d in docs
        if metric in d and d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [sorted(dimensions)]
        and all(d[k] == v for k, v in dimensions.items())
    ]
    assert len(found) == 1, (metric, dimensions, docs)
    return found[0][metric]


GAUGE = emf.declare("TestQueueDepth", "Count", ("Queue",), "sampled")
COUNTER = emf.declare("TestParcelsShipped", "Count", ("Queue",), "count")


def test_counts_are_summed_and_readings_kept_per_dimension_values(emitted) -> None:
    for n in (2, 5, 3):
        emf.observe(GAUGE, {"Queue": "a"}, n)
    emf.observe(GAUGE, {"Queue": "b"}, 7)
    emf.count(COUNTER, {"Queue": "a"})
    emf.count(COUNTER, {"Queue": "a"}, 4)
    docs = emitted()
    assert len(docs) == 2, "one document per set of dimension values, both metrics in it"
    assert one(docs, "TestQueueDepth", Queue="a") == [2, 5, 3]
    assert one(docs, "TestQueueDepth", Queue="b") == [7]
    assert one(docs, "TestParcelsShipped", Queue="a") == 5
    assert "TestParcelsShipped" not in next(d for d in docs if d["Queue"] == "b")
    units = {m["Name"]: m["Unit"] for d in docs for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"TestQueueDepth": "Count", "TestParcelsShipped": "Count"}
    assert emitted() == [], "a flush empties the aggregate"


def test_a_busy_gauge_stays_within_the_values_limit(emitted) -> None:
    for n in range(1000):
        emf.observe(GAUGE, {"Queue": "busy"}, n)
    values = one(emitted(), "TestQueueDepth", Queue="busy")
    assert len(values) == 100 and len(set(values)) == 100


def test_a_metric_is_written_only_with_its_declared_dimensions_and_kind(emitted) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        emf.observe(GAUGE, {"Queue": "a", "Service": "x"}, 1)
    with pytest.raises(ValueError, match="dimensions"):
        emf.count(COUNTER, {}, 1)
    with pytest.raises(ValueError, match="sampled"):
        emf.count(GAUGE, {"Queue": "a"})
    with pytest.raises(ValueError, match="count"):
        emf.observe(COUNTER, {"Queue": "a"}, 1)
    assert emitted() == []


def test_one_name_is_one_metric() -> None:
    assert emf.declare("TestQueueDepth", "Count", ("Queue",), "sampled") is not None  # the same again
    with pytest.raises(ValueError, match="already declared"):
        emf.declare("TestQueueDepth", "Count", ("Queue", "Service"), "sampled")
    with pytest.raises(ValueError, match="unit"):
        emf.declare("TestOther", "Parcels", ("Queue",), "count")


def test_nothing_is_aggregated_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emf, "_metrics", None)
    emf.observe(GAUGE, {"Queue": "a"}, 1)  # a no-op, not an error
    emf.count(COUNTER, {"Queue": "a"})


# The order saga's business metrics, from what one reaction records ---------------------------------


def test_an_order_declined_after_its_reservation_emits_its_step_compensation_and_end(emitted) -> None:
    from services.order.adapters import metrics
    from services.order.adapters.event_store import StoredEvent
    from services.order.adapters.recorder import Recorded
    from services.order.domain.saga import react
    from services.order.domain.state import OrderStatus
    from services.order.tests.unit.order_builders import ORDER, at, declined_msg, order_in

    reserved = order_in(OrderStatus.STOCK_RESERVED)  # async, stock reserved 1 s after acceptance
    reaction = react(reserved, declined_msg(), at(100))  # the decline itself happened at 2 s
    stored = tuple(
        StoredEvent(ORDER, reserved.version + i, uuid4(), event)
        for i, event in enumerate(reaction.events, start=1)
    )
    metrics.observe(Recorded(reaction.order.state, stored, ("CANCELLED",)))
    docs = emitted()
    assert one(docs, "SagaStepDuration", Step="pay", Mode="async") == [1000.0]
    assert one(docs, "Compensations", Action="release_stock", Reason="payment_declined") == 1
    assert one(docs, "OrdersEnded", Outcome="payment_declined", Mode="async") == 1
    assert len(docs) == 3, docs


# The CloudFormation templates read only metrics the code writes ---------------------------------

# The modules that declare what each process writes (HTTP apps, relays, consumers).
EMITTERS = (
    "shopstream.http",
    "shopstream.outbox",
    "shopstream.consumer",
    "services.order.adapters.metrics",
    "services.product.adapters.reservation_metrics",
)


def cfn_metric_references(template: Any) -> list[tuple[str, dict[str, str]]]:
    """(metric name, {dimension: value}) of every metric the template reads in the namespace the
    services write (the MetricsNamespace parameter): alarms, metric math, scaling policies and the
    dashboard's JSON body."""
    found: list[tuple[str, dict[str, str]]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("Namespace") == {"Ref": "MetricsNamespace"} and "MetricName" in node:
                dims = {d["Name"]: d["Value"] for d in node.get("Dimensions", [])}
                found.append((node["MetricName"], dims))
            if "DashboardBody" in node:
                found.extend(_dashboard_references(node["DashboardBody"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template)
    return found


def _dashboard_references(body: Any) -> list[tuple[str, dict[str, str]]]:
    text = body["Fn::Sub"][0] if isinstance(body["Fn::Sub"], list) else body["Fn::Sub"]
    text = text.replace("${MetricsNamespace}", "<services>")
    text = re.sub(r"\$\{[^}]+\}", "0", text)  # other substitutions: any valid JSON will do
    found = []
    for widget in json.loads(text)["widgets"]:
        previous: list[Any] = []
        for row in widget.get("properties", {}).get("metrics", []):
            fields = [x for x in row if not isinstance(x, dict)]
            # "." repeats the row above's field at that position (CloudWatch's shorthand)
            fields = [previous[i] if x == "." else x for i, x in enumerate(fields)]
            previous = fields
            if fields[0] == "<services>":
                found.append((fields[1], dict(zip(fields[2::2], fields[3::2], strict=True))))
    return found


def test_the_reference_finder_reads_alarms_policies_and_dashboards() -> None:
    template = {
        "Resources": {
            "A": {"Properties": {"Namespace": {"Ref": "MetricsNamespace"}, "MetricName": "X",
                                 "Dimensions": [{"Name": "Service", "Value": "order"}]}},
            "B": {"Properties": {"Metrics": [{"MetricStat": {"Metric": {
                "Namespace": {"Ref": "MetricsNamespace"}, "MetricName": "Y"}}}]}},
            "C": {"Properties": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization"}},
            "D": {"Properties": {"DashboardBody": {"Fn::Sub": [json.dumps({"widgets": [
                {"properties": {"value": "${Threshold}", "metrics": [
                    ["${MetricsNamespace}", "Z", "ConsumerGroup", "g", {"label": "z"}],
                    [".", ".", ".", "h"],
                    ["AWS/ECS", "CPUUtilization"],
                ]}}]}), {}]}}},
        }
    }
    assert cfn_metric_references(template) == [
        ("X", {"Service": "order"}),
        ("Y", {}),
        ("Z", {"ConsumerGroup": "g"}),
        ("Z", {"ConsumerGroup": "h"}),
    ]


def test_every_metric_the_templates_read_is_one_the_services_write() -> None:
    import importlib

    from services.order.entrypoints import consumers as order_consumers
    from services.product.entrypoints import consumers as product_consumers
    from shopstream_tools.runtime import topology
    from tests.deploy import helpers as h

    for module in EMITTERS:
        importlib.import_module(module)
    # the values the code writes for the dimensions whose values are fixed by the code
    values = {
        "ConsumerGroup": {product_consumers.GROUP, order_consumers.SAGA_GROUP},  # the sagas' groups
        "Service": {spec.name for spec in topology.specs()},
    }
    references = [
        (template.name, name, dims)
        for template in h.aws_templates()
        for name, dims in cfn_metric_references(h.cfn(template.name))
    ]
    assert {"ConsumerLag", "OutboxOldestAgeSeconds"} <= {name for _, name, _ in references}
    for template, name, dims in references:
        declared = emf.DECLARED.get(name)
        assert declared is not None, f"{template} reads {name}, which no process writes"
        assert tuple(sorted(dims)) == declared.dimensions, (
            f"{template} reads {name} by {sorted(dims)}; the services write it by {declared.dimensions}"
        )
        for dimension, value in dims.items():
            if dimension in values:
                assert value in values[dimension], f"{template}: {name} {dimension}={value!r} is never written"


# What the relay and the consumers write, on the test platform --------------------------------------


@pytest.mark.integration
async def test_the_relay_writes_the_oldest_pending_outbox_age(platform, emitted) -> None:
    import asyncpg

    from shopstream.outbox import Relay

    conn = await asyncpg.connect(platform.settings.database_url("product"))
    try:
        # a row 90 s old that nobody else sees: it is rolled back, so never published
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, message_key, event_type, payload, created_at)"
                " VALUES ($1, 'test-emf', 'k', 'Test', ''::bytea, now() - interval '90 seconds')",
                uuid4(),
            )
            await Relay(platform.settings, "product")._refresh_gauges(conn)
        finally:
            await transaction.rollback()
    finally:
        await conn.close()
    docs = emitted()
    [age] = one(docs, "OutboxOldestAgeSeconds", Service="product")
    assert age >= 90
    [pending] = one(docs, "OutboxPendingEvents", Service="product")
    assert pending >= 1


@pytest.mark.integration
async def test_a_consumer_writes_its_group_lag(platform, emitted) -> None:
    import asyncio

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    from shopstream import events
    from shopstream.consumer import BatchConsumer, Delivery

    settings = platform.settings
    topic, group = f"test-emf-{uuid4().hex[:8]}", f"test-emf-{uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": settings.kafka_servers})
    for f in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        f.result()
    producer = Producer({"bootstrap.servers": settings.kafka_servers})
    for n in range(3):
        event = events.new_event("TestHappened", str(n), {"n": n}, source="test")
        producer.produce(topic, key=str(n), value=events.encode(event))
    assert producer.flush(10) == 0
    applied: set[str] = set()

    async def apply(deliveries: list[Delivery]) -> None:
        applied.update(d.event.id for d in deliveries)  # idempotent: a redelivery adds nothing

    consumer = BatchConsumer(settings, group, [topic], apply)
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(60):
            # the lag is read every 2 s, once partitions are assigned: wait for two readings
            while len(applied) < 3 or emf._metrics is None or not _lag_readings(group):
                await asyncio.sleep(0.2)
    finally:
        consumer.stop()
        await asyncio.gather(task, return_exceptions=True)
        admin.delete_topics([topic])
    values = one(emitted(), "ConsumerLag", ConsumerGroup=group)
    assert values and all(v >= 0 for v in values), values


def _lag_readings(group: str) -> bool:
    """Whether the aggregator holds a ConsumerLag reading for ``group`` (without flushing it)."""
    metrics = emf._metrics
    assert metrics is not None
    with metrics._lock:
        return any(
            "ConsumerLag" in by_name and dict(key).get("ConsumerGroup") == group
            for key, by_name in metrics._series.items()
        )
