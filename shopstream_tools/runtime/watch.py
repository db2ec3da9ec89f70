"""supervisord's event listener: counts restarts, notices crash loops, exports both to Prometheus.

A restart is a start that follows an unplanned exit (``EXITED`` or ``BACKOFF`` to ``STARTING``); a
start after ``STOPPED`` is an operator's and does not count. ``FATAL`` is a crash loop supervisord
gave up on. The counts go to ``shopstream_process_restarts_total`` and ``shopstream_process_fatal``
on ``--port`` and to ``--state`` (JSON, read by ``shopstream status`` and the console).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from prometheus_client import Counter, Gauge, start_http_server
from supervisor import childutils

RESTARTS = Counter(
    "shopstream_process_restarts", "restarts after an unplanned exit, by supervisord", ["program"]
)
FATAL = Gauge(
    "shopstream_process_fatal", "1 while supervisord has given up on a crash-looping process",
    ["program"],
)  # fmt: skip


class Tally:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.restarts: dict[str, int] = {}
        self.fatal: dict[str, bool] = {}
        try:  # this listener was itself restarted: carry on counting
            saved = json.loads(state.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        for process, count in saved.get("restarts", {}).items():
            self.restarts[process] = int(count)
            RESTARTS.labels(process).inc(int(count))
        for process in saved.get("fatal", []):
            self.fatal[process] = True
            FATAL.labels(process).set(1)

    def hear(self, event: str, process: str, from_state: str) -> None:
        if event == "PROCESS_STATE_STARTING" and from_state in ("EXITED", "BACKOFF"):
            self.restarts[process] = self.restarts.get(process, 0) + 1
            RESTARTS.labels(process).inc()
        FATAL.labels(process).set(1 if event == "PROCESS_STATE_FATAL" else 0)
        self.fatal[process] = event == "PROCESS_STATE_FATAL"
        self.save()

    def save(self) -> None:
        tmp = self.state.with_suffix(".tmp")
        fatal = sorted(p for p, f in self.fatal.items() if f)
        tmp.write_text(json.dumps({"restarts": self.restarts, "fatal": fatal}))
        os.replace(tmp, self.state)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()
    start_http_server(args.port, "127.0.0.1")
    tally = Tally(args.state)
    tally.save()
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event = headers["eventname"]
        if event.startswith("PROCESS_STATE"):
            fields, _ = childutils.eventdata(payload + "\n")
            tally.hear(event, fields["processname"], fields.get("from_state", ""))
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main()
