"""One log format for every Python process: a JSON line per record, with the request id when known."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from shopstream import redaction

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "component": self.component,
            "logger": record.name,
            # no token, password or address reaches a log, whoever formatted the message
            "msg": redaction.text(record.getMessage()),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exc"] = redaction.text(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure(component: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; that is noise in service logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
