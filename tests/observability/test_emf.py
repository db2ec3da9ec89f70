"""CloudWatch Embedded Metric Format, checked against the specification's rules.

The validator below encodes the EMF specification (root `_aws` with an integer millisecond
Timestamp and CloudWatchMetrics directives; each directive's Namespace, DimensionSets referencing
string members, at most 30 dimensions, at most 100 metric definitions, each naming a member that is
a number or an array of at most 100 numbers, units from CloudWatch's list).
"""

from __future__ import annotations

import io
import json
from typing import Any

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
    metrics = emf.RequestMetrics("shopstream", out, clock=lambda: 1_700_000_000.0)
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
    metrics = emf.RequestMetrics("shopstream", out)
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
