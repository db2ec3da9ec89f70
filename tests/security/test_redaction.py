"""Logs and the console never show tokens, passwords or full shipping addresses."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from shopstream import redaction
from shopstream.logging import JsonFormatter
from shopstream_tools.console import kafka_view

JWT = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiIxMjMiLCJyb2xlcyI6WyJhZG1pbiJdfQ"
    ".MEUCIQDx3k1vY2hZc2lnbmF0dXJlX2hlcmVfYWJjZGVm"
)
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Row", "city": "London",
           "postal_code": "NW1 6XE", "country": "GB"}  # fmt: skip
SECRETS = ("eyJhbGci", "s3cr3t-pw", "Analytical Row", "NW1 6XE", "Ada Lovelace", "svc-cred-42")


def _shows_none(rendered: str) -> None:
    for secret in SECRETS:
        assert secret not in rendered, (secret, rendered)


def test_text_hides_tokens_passwords_credentials_and_printed_addresses() -> None:
    line = (
        f"call failed: Authorization: Bearer {JWT} token={JWT} "
        "dsn=postgresql://order_app:s3cr3t-pw@127.0.0.1:5432/orders password='s3cr3t-pw' "
        "X-Service-Credential: svc-cred-42 "
        f"order={{'id': 7, 'shipping_address': {ADDRESS!r}}} "
        f"event=OrderPlaced(shipping_address=Address(name='Ada Lovelace', line1='12 Analytical Row'))"
    )
    cleaned = redaction.text(line)
    _shows_none(cleaned)
    assert "postgresql://order_app:[redacted]@127.0.0.1:5432/orders" in cleaned
    assert "'id': 7" in cleaned  # the rest stays readable


def test_every_log_record_is_redacted_message_and_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    log = logging.getLogger("redaction-test")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("placing %s for %s with %s", {"shipping_address": ADDRESS}, f"Bearer {JWT}",
                    "postgresql://u:s3cr3t-pw@db/x")  # fmt: skip
        try:
            raise RuntimeError(f"upstream refused token {JWT} (password=s3cr3t-pw)")
        except RuntimeError:
            log.exception("X-Service-Credential: svc-cred-42 refused")
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    _shows_none(stream.getvalue())
    assert "exc" in lines[1] and "RuntimeError" in lines[1]["exc"]


class _KafkaMessage:
    def __init__(self, value: dict[str, Any], headers: list[tuple[str, bytes]]) -> None:
        self._value, self._headers = json.dumps(value).encode(), headers

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def key(self) -> bytes:
        return b"order-1"

    def topic(self) -> str:
        return "order-events"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 1

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


def test_the_console_shows_events_without_addresses_or_credentials() -> None:
    event = {"type": "OrderPlaced", "order_id": "o-1",
             "data": {"shipping_address": ADDRESS, "lines": [{"quantity": 2}],
                      "note": f"token {JWT}"}}  # fmt: skip
    shown = kafka_view.decode(
        _KafkaMessage(event, [("authorization", f"Bearer {JWT}".encode()), ("trace", b"abc")])
    )
    _shows_none(json.dumps(shown.value) + json.dumps(shown.headers))
    assert shown.value["data"]["shipping_address"] == {"country": "GB", "redacted": True}
    assert shown.value["data"]["lines"] == [{"quantity": 2}]
    assert shown.headers["trace"] == "abc"
