"""What a span costs the process that makes it and exports it to Zipkin (run 03's figures).

Makes 12,000 spans shaped like the platform's (a consumer span, three SQL spans under it), then
posts batches of them to a real Zipkin with the exporter the platform uses, and prints the CPU of
this thread per span made and per post. Start Zipkin first:
``QUERY_PORT=29411 STORAGE_TYPE=mem java -jar zipkin-server-3.4.4-exec.jar``.
"""

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

SQL = (
    "INSERT INTO outbox (event_id, topic, message_key, event_type, payload, headers)"
    " SELECT e, t, k, y, p, h FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
    " $5::bytea[], $6::jsonb[]) WITH ORDINALITY AS m(e, t, k, y, p, h, n) ORDER BY n"
)


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[Any] = []  # ReadableSpans; ZipkinExporter's type says Span

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def main() -> None:
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("shopstream")
    consumer = {"messaging.system": "kafka", "messaging.operation.type": "process",
                "messaging.destination.name": "order-events", "messaging.consumer.group.name": "product-saga"}  # fmt: skip
    sql = {"db.system": "postgresql", "db.statement": SQL, "db.name": "product"}
    rounds = 3000
    started = time.thread_time()
    for offset in range(rounds):
        with tracer.start_as_current_span("process order-events", kind=SpanKind.CONSUMER,
                                          attributes={**consumer, "messaging.kafka.offset": offset}):  # fmt: skip
            for _ in range(3):
                tracer.start_span("INSERT", kind=SpanKind.CLIENT, attributes=sql).end()
    print(f"create+end: {(time.thread_time() - started) / (rounds * 4) * 1e6:.1f} us per span")
    for trust in (True, False):
        exporter = ZipkinExporter(endpoint="http://127.0.0.1:29411/api/v2/spans", timeout=5)
        exporter.session.trust_env = trust  # proxies and .netrc looked up per post, or not
        for batch in (4, 40, 200):
            exporter.export(keep.spans[:batch])
            posts = max(5, 2000 // batch)
            cpu, wall = time.thread_time(), time.perf_counter()
            for n in range(posts):
                start = n * batch % 8000
                exporter.export(keep.spans[start:start + batch])
            per = (time.thread_time() - cpu) / posts
            print(f"trust_env={trust} batch={batch}: {per * 1e3:.2f} ms CPU per post,"
                  f" {per / batch * 1e6:.0f} us per span;"
                  f" wall {(time.perf_counter() - wall) / posts * 1e3:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
