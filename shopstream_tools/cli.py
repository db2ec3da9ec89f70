"""`shopstream`: every routine command of the platform in one CLI."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

from shopstream.config import PROJECT_ROOT, Settings


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import platform

    seconds = platform.up(settings)
    print(f"shopstream is up in {seconds:.1f}s: http://127.0.0.1:{settings.gateway_port}/products")
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import platform

    platform.down(settings)
    print("shopstream is down")
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import platform

    rows = platform.status(settings)
    print(
        f"{'process':<18}{'pid':>8}{'port':>7}  {'health':<10}{'rss MB':>8}{'restarts':>9}  command"
    )
    for r in rows:
        print(
            f"{r.name:<18}{r.pid or '-':>8}{r.port or '-':>7}  {r.health:<10}{r.rss_mb:>8.0f}"
            f"{r.restarts:>9}  {r.program}"
        )
    return 0 if all(r.health in ("up", "ready") for r in rows) else 1


def cmd_logs(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import processes

    folder = processes.logs_dir(settings)
    files = sorted(folder.glob(f"{args.name}*.log" if args.name else "*.log"))
    if not files:
        print(f"no logs in {folder}", file=sys.stderr)
        return 1
    tail = ["tail", "-n", str(args.lines), *(["-F"] if args.follow else []), *map(str, files)]
    return subprocess.call(tail)


def cmd_scale(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import platform

    platform.scale(settings, args.service, args.instances)
    print(f"{args.service}: {args.instances} instance(s); gateway reloaded")
    if args.consumers is not None:
        platform.scale_consumers(settings, args.service, args.consumers)
        print(f"{args.service}: {args.consumers} consumer process(es) sharing the partitions")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream import auth

    auth.ensure_local_issuer(settings)
    if args.admin:
        print(auth.admin_token(settings, args.ttl))
    else:
        print(auth.customer_token(settings, str(args.customer), args.ttl))
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from services.product.entrypoints.seed import seed_catalog

    count = asyncio.run(seed_catalog(settings, args.products, force=args.force))
    print(f"catalog holds {count} seeded products")
    return 0


def cmd_reset(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import platform

    if not args.yes:
        print(f"this deletes every order, product and event under {settings.data_path}; add --yes")
        return 2
    platform.down(settings)
    shutil.rmtree(settings.data_path, ignore_errors=True)
    print(f"removed {settings.data_path}; `shopstream up` starts afresh")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import platform

    for service, versions in platform.migrate_all(settings).items():
        print(f"{service}: {', '.join(versions) or 'up to date'}")
    return 0


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


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import backup

    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(args.to) if args.to else settings.data_path.parent / "backups" / stamp
    backup.backup(settings, folder)
    print(f"backup in {folder}")
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import backup

    backup.restore(settings, Path(args.folder))
    print(f"restored {args.folder} into {settings.data_path}; the platform is up")
    return 0


def cmd_fault(settings: Settings, args: argparse.Namespace) -> int:
    """Flip the payment simulator's fault switch; every order process follows within 0.25 s."""
    from services.order.adapters import payment_faults
    from services.order.adapters.payments import fault_file

    payment_faults.write(fault_file(settings), args.mode, args.seconds, args.delay_ms)
    until = f" for {args.seconds:g} s" if args.seconds and args.mode != "off" else ""
    print(f"payment provider: {args.mode}{until}")
    return 0


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


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.bench import run_product_benchmark

    return run_product_benchmark(settings, args)


def cmd_lab(settings: Settings, args: argparse.Namespace) -> int:
    """Run the performance lab's tests against its own platform (data-lab/, ports +30000)."""

    from shopstream_tools.lab import runner, testbed
    from shopstream_tools.lab.profiles import PROFILES

    if args.action == "down":
        testbed.down(testbed.lab_settings(settings, Path(args.data_dir), args.port_offset))
        print("lab platform is down")
        return 0
    tests = list(runner.TESTS) if "all" in args.tests else sorted(set(args.tests))
    if args.platform != "default":  # kept in the lab's folder, as `up --profile` keeps it
        import dataclasses

        from shopstream_tools.runtime import profiles as platform_profiles

        in_lab = dataclasses.replace(settings, data_dir=str(Path(args.data_dir).resolve()))
        settings = dataclasses.replace(
            platform_profiles.apply(in_lab, args.platform), data_dir=settings.data_dir
        )
    try:
        run_dir = runner.run(
            settings,
            tests,
            PROFILES[args.profile],
            data_dir=Path(args.data_dir),
            port_offset=args.port_offset,
            keep_up=not args.down_after,
            resume=Path(args.resume) if args.resume else None,
        )
    except runner.CannotStart as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    summary = (run_dir / "summary.json").read_text()
    return 0 if '"passed": false' not in summary else 1


def cmd_lab_report(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.lab.rebuild import rebuild

    print(rebuild(args.run_dir))
    return 0


def cmd_lab_slides(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.lab import slides

    if not (args.run_dir / "environment.json").is_file():
        print(f"lab slides: {args.run_dir} is not a lab run folder (no environment.json)", file=sys.stderr)
        return 2
    for name, path in slides.write(args.run_dir, args.out, not args.no_pdf, tuple(args.screenshot)).items():
        print(f"{name:<8} {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shopstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("up", help="start the whole platform")
    s.add_argument(
        "--profile",
        dest="platform_profile",  # not the lab's or perf-check's --profile
        choices=["default", "ha"],
        default=None,
        help="ha: three Kafka brokers, two instances and two consumers of each service",
    )
    s.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop every process").set_defaults(func=cmd_down)
    sub.add_parser("status", help="every process with pid, port, health").set_defaults(
        func=cmd_status
    )

    s = sub.add_parser("logs", help="show (or follow) the log files")
    s.add_argument("name", nargs="?", default="", help="process name prefix, e.g. product or kafka")
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("-n", "--lines", type=int, default=40)
    s.set_defaults(func=cmd_logs)

    s = sub.add_parser("scale", help="run N instances of a service behind the gateway")
    s.add_argument("service")
    s.add_argument("instances", type=int)
    s.add_argument(
        "--consumers", type=int, help="also run N copies of its consumer processes (1..8)"
    )
    s.set_defaults(func=cmd_scale)

    s = sub.add_parser("token", help="mint a bearer token with the local issuer's key")
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", type=uuid.UUID, metavar="UUID", help="a customer's token")
    who.add_argument("--admin", action="store_true", help="an operator's token (role admin)")
    s.add_argument("--ttl", type=int, default=3600, help="seconds the token stays valid")
    s.set_defaults(func=cmd_token)

    s = sub.add_parser("seed", help="load a realistic, deterministic catalog")
    s.add_argument("--products", type=int, default=100_000)
    s.add_argument("--force", action="store_true", help="seed again even if already seeded")
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("reset", help="stop and delete all data")
    s.add_argument("--yes", action="store_true")
    s.set_defaults(func=cmd_reset)

    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=cmd_migrate)

    s = sub.add_parser(
        "rebuild-projections", help="rebuild the orders projection from the order event store"
    )
    s.add_argument(
        "--check", action="store_true", help="only count the rows that differ; change nothing"
    )
    s.set_defaults(func=cmd_rebuild_projections)

    s = sub.add_parser("serve", help="run one instance of a service's HTTP API")
    s.add_argument("service", choices=["product", "order"])
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("backup", help="dump every database, the event topics and the offsets")
    s.add_argument("--to", help="a new folder (default: backups/<time> beside the data folder)")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("restore", help="bring a backup back into a fresh data folder, then up")
    s.add_argument("folder")
    s.set_defaults(func=cmd_restore)

    s = sub.add_parser("fault", help="make the payment simulator hang, fail or slow down")
    s.add_argument("target", choices=["payment"])
    s.add_argument("mode", choices=["off", "hang", "fail", "slow"])
    s.add_argument("--for", dest="seconds", type=float, default=None, help="then back to normal")
    s.add_argument("--delay-ms", type=float, default=1500.0, help="added latency when slow")
    s.set_defaults(func=cmd_fault)

    s = sub.add_parser("relay", help="publish a service's outbox to Kafka")
    s.add_argument("service", choices=["product", "order"])
    s.add_argument("--metrics-port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=cmd_relay)

    s = sub.add_parser("consume", help="run a service's event consumers")
    s.add_argument("service", choices=["product", "order"])
    s.add_argument("--metrics-port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=cmd_consume)

    s = sub.add_parser("dlq", help="the dead-letter topic: `dlq replay [--dry-run]`")
    dlq_sub = s.add_subparsers(dest="dlq_command", required=True)
    r = dlq_sub.add_parser("replay", help="replay dead-lettered messages to their original topics")
    r.add_argument("--dry-run", action="store_true", help="list them with reasons; change nothing")
    r.set_defaults(func=cmd_dlq)

    s = sub.add_parser(
        "kafka", help="run a Kafka tool: topics, consumer-groups, producer-perf-test, ..."
    )
    s.add_argument("tool")
    s.add_argument("args", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_kafka)

    s = sub.add_parser("bench", help="benchmark through the gateway against same-run ceilings")
    s.add_argument("target", choices=["products"])
    s.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    s.add_argument("--connections", type=int, default=64)
    s.add_argument("--rounds", type=int, default=3, help="repeats; medians are reported")
    s.add_argument(
        "--anonymous", action="store_true", help="no bearer tokens (default: signed-in customers)"
    )
    s.add_argument(
        "--ids",
        choices=["uniform", "zipf"],
        default="uniform",
        help="how GET by id draws products: uniformly, or a hot set (Zipf s=1 over the catalog)",
    )
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser(
        "perf-check", help="CPU per order and per read on a fixed load, against the baseline"
    )
    s.add_argument("--profile", type=Path, help="also sample the pipeline with py-spy into DIR")
    s.add_argument("--update-baseline", action="store_true", help="write the baseline from this run")
    s.add_argument("--keep-up", action="store_true", help="leave the perf platform running")
    s.add_argument("--order-rate", type=float, default=100.0)
    s.add_argument("--order-seconds", type=float, default=30.0)
    s.set_defaults(func=cmd_perf_check)

    from shopstream_tools.compose import command as compose_command

    compose_command.add_parser(sub)

    lab = sub.add_parser("lab", help="performance lab: PT-01..PT-06, ceilings, charts, HTML report, slides")
    actions = lab.add_subparsers(dest="action", required=True)
    s = actions.add_parser("run", help="run tests against the lab's own platform")
    s.add_argument(
        "tests",
        nargs="*",
        default="all",
        choices=["all", *(f"PT-0{n}" for n in range(1, 8))],  # the registry (lab.tests) is heavy to import
    )
    s.add_argument("--profile", choices=["smoke", "quick", "full", "plan"], default="quick")
    s.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an earlier run in its folder: the tests it measured are not run again",
    )
    s.add_argument("--down-after", action="store_true", help="stop the lab platform at the end")
    s.add_argument("--platform", choices=["default", "ha"], default="default",
                   help="the lab platform's profile (ha: 3 brokers, 2 instances and consumers each)")  # fmt: skip
    d = actions.add_parser("down", help="stop the lab platform")
    for p_ in (s, d):
        p_.add_argument(
            "--data-dir", default=str(PROJECT_ROOT / "data-lab"), help="the lab platform's folder"
        )
        p_.add_argument("--port-offset", type=int, default=30000, help="added to every default port")
        p_.set_defaults(func=cmd_lab)
    r = actions.add_parser("report", help="summary, charts and report.html again from a run folder")
    r.add_argument("run_dir", type=Path)
    r.set_defaults(func=cmd_lab_report)
    r = actions.add_parser("slides", help="the run's slide deck: slides.html and slides.pdf")
    r.add_argument("run_dir", type=Path, help="a run folder (performance-tests/results/<run>)")
    r.add_argument("--out", type=Path, help="where to write the deck (default: the run folder)")
    r.add_argument("--no-pdf", action="store_true", help="only the HTML deck")
    r.add_argument("--screenshot", type=int, action="append", default=[], help="also a PNG of slide N")
    r.set_defaults(func=cmd_lab_slides)
    return p


def cmd_perf_check(settings: Settings, args: argparse.Namespace) -> int:
    import fcntl

    from shopstream_tools.perf import check

    plan = check.Plan(order_rate=args.order_rate, order_seconds=args.order_seconds)
    # One benchmark at a time on this machine: two would measure each other.
    with open(check.BENCH_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return check.run(plan, args.profile, args.update_baseline, args.keep_up)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from shopstream_tools.runtime import profiles

    settings = profiles.apply(Settings.from_env(), getattr(args, "platform_profile", None))
    started = time.monotonic()
    try:
        return int(args.func(settings, args))
    except KeyboardInterrupt:
        print(f"interrupted after {time.monotonic() - started:.1f}s", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
