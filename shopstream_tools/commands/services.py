"""`shopstream` commands that run one service process: serve, relay, consume, dlq, rebuild-projections,
kafka."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import uvloop

from shopstream.config import Settings


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """Run one instance of a service's HTTP app under granian (replaces this process)."""
    port = args.port or settings.service_port(args.service)
    from shopstream_tools.runtime import serving

    # a deep accept queue for load peaks; workers get 20 s to finish requests when stopped
    extra = ("--backlog", "2048", "--workers-kill-timeout", "20")
    argv = serving.granian_argv(f"{serving.__name__}:create", args.host, port, *extra)
    os.environ[serving.SERVICE_ENV] = args.service
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_relay(settings: Settings, args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from shopstream import logging as shop_logging
    from shopstream.outbox import Relay

    shop_logging.configure(f"{args.service}-relay", settings.log_level)
    if args.metrics_port:
        start_http_server(
            args.metrics_port, addr="127.0.0.1" if args.host == "127.0.0.1" else args.host
        )
    relay = Relay(settings, args.service, _service_hook(args.service, "relay", "on_published"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, relay.stop)
        await relay.run()

    uvloop.run(main())  # libuv's loop: a relay is a loop of small I/O, half the cost per wake-up
    return 0


def _service_hook(service: str, module: str, name: str) -> Any:
    """``services/<service>/entrypoints/<module>.py``'s ``name``, or None when it has none."""
    import importlib

    path = f"services.{service}.entrypoints.{module}"
    try:
        return getattr(importlib.import_module(path), name)
    except ModuleNotFoundError as exc:
        if exc.name != path:
            raise
        return None


def cmd_consume(settings: Settings, args: argparse.Namespace) -> int:
    """Run a service's event consumers (``services/<name>/entrypoints/consumers.py``)."""
    import importlib

    from prometheus_client import start_http_server

    from shopstream import logging as shop_logging

    shop_logging.configure(f"{args.service}-consumers", settings.log_level)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.host)
    module = importlib.import_module(f"services.{args.service}.entrypoints.consumers")
    uvloop.run(module.run(settings))  # as the HTTP instances (granian --loop uvloop)
    return 0


def cmd_dlq(settings: Settings, args: argparse.Namespace) -> int:
    """List the dead-lettered messages with their reasons, or replay them to their topics."""
    from shopstream_tools import dlq

    return dlq.run(settings, dry_run=args.dry_run)


def cmd_rebuild_projections(settings: Settings, args: argparse.Namespace) -> int:
    """Rebuild the orders projection from the order event store (or only check it)."""
    from services.order.entrypoints.rebuild import main

    return main(settings, check=args.check)


def cmd_kafka(settings: Settings, args: argparse.Namespace) -> int:
    """Run one of Kafka's own tools against the platform's broker."""
    from shopstream_tools.runtime import kafka_broker

    extra = list(args.args)
    if (
        args.tool
        in (
            "topics",
            "consumer-groups",
            "consumer-perf-test",
            "console-consumer",
            "get-offsets",
            "metadata-quorum",
            "configs",
        )
        and "--bootstrap-server" not in extra
    ):
        extra = ["--bootstrap-server", settings.kafka_servers, *extra]
    if (
        args.tool == "producer-perf-test"
        and "--bootstrap-server" not in extra
        and "--producer-props" not in extra
    ):
        extra = [*extra, "--producer-props", f"bootstrap.servers={settings.kafka_servers}"]
    return subprocess.call(kafka_broker.tool(args.tool, *extra))
