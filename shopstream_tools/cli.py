"""`shopstream`: every routine command of the platform in one CLI."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.commands import lab as lab_commands
from shopstream_tools.commands import platform as platform_commands
from shopstream_tools.commands import services as service_commands
from shopstream_tools.lab.testbed import LAB_PORT_OFFSET


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
    s.set_defaults(func=platform_commands.cmd_up)
    sub.add_parser("down", help="stop every process").set_defaults(func=platform_commands.cmd_down)
    sub.add_parser("status", help="every process with pid, port, health").set_defaults(
        func=platform_commands.cmd_status
    )

    s = sub.add_parser("logs", help="show (or follow) the log files")
    s.add_argument("name", nargs="?", default="", help="process name prefix, e.g. product or kafka")
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("-n", "--lines", type=int, default=40)
    s.set_defaults(func=platform_commands.cmd_logs)

    s = sub.add_parser("scale", help="run N instances of a service behind the gateway")
    s.add_argument("service")
    s.add_argument("instances", type=int)
    s.add_argument(
        "--consumers", type=int, help="also run N copies of its consumer processes (1..8)"
    )
    s.set_defaults(func=platform_commands.cmd_scale)

    s = sub.add_parser("token", help="mint a bearer token with the local issuer's key")
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", type=uuid.UUID, metavar="UUID", help="a customer's token")
    who.add_argument("--admin", action="store_true", help="an operator's token (role admin)")
    s.add_argument("--ttl", type=int, default=3600, help="seconds the token stays valid")
    s.set_defaults(func=platform_commands.cmd_token)

    s = sub.add_parser(
        "gateway-cert",
        help="issue a TLS certificate from the platform's local CA (for a compose stack elsewhere, "
        "a dev cluster's Secret shopstream-gateway-tls)",
    )
    s.add_argument("--name", action="append", required=True, help="a host name or address (repeat)")
    s.add_argument("--out", type=Path, required=True, help="folder for gateway.crt, gateway.key, ca.crt")
    s.set_defaults(func=platform_commands.cmd_gateway_cert)

    s = sub.add_parser(
        "seed", help="load a realistic, deterministic catalog (and a year of order history)"
    )
    s.add_argument("--products", type=int, default=100_000)
    s.add_argument(
        "--orders", type=int, default=0,
        help="also load this many orders of history (events, projection, reservations) with COPY",
    )
    s.add_argument("--force", action="store_true", help="seed again even if already seeded")
    s.set_defaults(func=platform_commands.cmd_seed)

    s = sub.add_parser("reset", help="stop and delete all data")
    s.add_argument("--yes", action="store_true")
    s.set_defaults(func=platform_commands.cmd_reset)

    s = sub.add_parser("migrate", help="apply pending schema migrations, as each database's owner role")
    s.add_argument("services", nargs="*", metavar="service", help="product, order (default: both)")
    s.set_defaults(func=platform_commands.cmd_migrate)

    s = sub.add_parser(
        "rotate-db-passwords",
        help="new PostgreSQL passwords for the private cluster's roles, without a restart",
    )
    s.add_argument("roles", nargs="*", metavar="role", help="default: the admin and every service's")
    s.set_defaults(func=platform_commands.cmd_rotate_db_passwords)

    s = sub.add_parser(
        "rebuild-projections", help="rebuild the orders projection from the order event store"
    )
    s.add_argument(
        "--check", action="store_true", help="only count the rows that differ; change nothing"
    )
    s.set_defaults(func=service_commands.cmd_rebuild_projections)

    s = sub.add_parser("serve", help="run one instance of a service's HTTP API")
    s.add_argument("service", choices=["product", "order"])
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=service_commands.cmd_serve)

    s = sub.add_parser("backup", help="dump every database, the event topics and the offsets")
    s.add_argument("--to", help="a new folder (default: backups/<time> beside the data folder)")
    s.set_defaults(func=platform_commands.cmd_backup)

    s = sub.add_parser("restore", help="bring a backup back into a fresh data folder, then up")
    s.add_argument("folder")
    s.set_defaults(func=platform_commands.cmd_restore)

    s = sub.add_parser("fault", help="make the payment simulator hang, fail or slow down")
    s.add_argument("target", choices=["payment"])
    s.add_argument("mode", choices=["off", "hang", "fail", "slow"])
    s.add_argument("--for", dest="seconds", type=float, default=None, help="then back to normal")
    s.add_argument("--delay-ms", type=float, default=1500.0, help="added latency when slow")
    s.set_defaults(func=platform_commands.cmd_fault)

    s = sub.add_parser("relay", help="publish a service's outbox to Kafka")
    s.add_argument("service", choices=["product", "order"])
    s.add_argument("--metrics-port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=service_commands.cmd_relay)

    s = sub.add_parser("consume", help="run a service's event consumers")
    s.add_argument("service", choices=["product", "order"])
    s.add_argument("--metrics-port", type=int, default=0)
    s.add_argument("--host", default="127.0.0.1")
    s.set_defaults(func=service_commands.cmd_consume)

    s = sub.add_parser("dlq", help="the dead-letter topic: `dlq replay [--dry-run]`")
    dlq_sub = s.add_subparsers(dest="dlq_command", required=True)
    r = dlq_sub.add_parser("replay", help="replay dead-lettered messages to their original topics")
    r.add_argument("--dry-run", action="store_true", help="list them with reasons; change nothing")
    r.set_defaults(func=service_commands.cmd_dlq)

    s = sub.add_parser(
        "kafka", help="run a Kafka tool: topics, consumer-groups, producer-perf-test, ..."
    )
    s.add_argument("tool")
    s.add_argument("args", nargs=argparse.REMAINDER)
    s.set_defaults(func=service_commands.cmd_kafka)

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
    s.set_defaults(func=lab_commands.cmd_bench)

    s = sub.add_parser(
        "perf-check", help="CPU per order and per read on a fixed load, against the baseline"
    )
    s.add_argument("--profile", type=Path, help="also sample the pipeline with py-spy into DIR")
    s.add_argument("--update-baseline", action="store_true",
                   help="write the baseline from this run (the medians with --runs)")  # fmt: skip
    s.add_argument("--keep-up", action="store_true", help="leave the perf platform running")
    s.add_argument("--runs", type=int, default=1,
                   help="measure N times (~2.6 min each) and judge the medians")  # fmt: skip
    s.add_argument("--order-rate", type=float, default=100.0)
    s.add_argument("--order-seconds", type=float, default=30.0)
    s.add_argument("--warmup-rate", type=float, default=150.0,
                   help="orders/s of the unmeasured warm-up minute (lower it with a costlier "
                   "setting, e.g. --tracing 1, so the measured step starts with nothing queued)")  # fmt: skip
    s.add_argument("--tracing", type=float, metavar="RATIO",
                   help="trace at this sample ratio (Zipkin up); reported, not gated")  # fmt: skip
    s.set_defaults(func=lab_commands.cmd_perf_check)

    from shopstream_tools.compose import command as compose_command

    compose_command.add_parser(sub)

    lab = sub.add_parser("lab", help="performance lab: PT-01..PT-07 and the strategy comparisons, ceilings, charts, HTML report, slides")
    actions = lab.add_subparsers(dest="action", required=True)
    s = actions.add_parser("run", help="run tests against the lab's own platform")
    s.add_argument(
        "tests",
        nargs="*",
        default="all",
        # the registry (lab.tests) is heavy to import
        choices=["all", *(f"PT-0{n}" for n in range(1, 8)), "PT-03b", "PT-04b"],
    )
    from shopstream_tools.lab.profiles import PROFILES

    s.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    s.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an earlier run in its folder: the tests it measured are not run again",
    )
    s.add_argument("--down-after", action="store_true", help="stop the lab platform at the end")
    s.add_argument("--loadgen", choices=["locust", "jmeter"], default="locust",
                   help="what drives the closed-loop steps of PT-01, PT-02 and PT-04 (jmeter: their"
                        " JMeter plans, non-GUI; installed by scripts/bootstrap.sh)")  # fmt: skip
    s.add_argument("--platform", choices=["default", "ha"], default="default",
                   help="the lab platform's profile (ha: 3 brokers, 2 instances and consumers each)")  # fmt: skip
    d = actions.add_parser("down", help="stop the lab platform")
    for p_ in (s, d):
        p_.add_argument(
            "--data-dir", default=str(PROJECT_ROOT / "data-lab"), help="the lab platform's folder"
        )
        p_.add_argument("--port-offset", type=int, default=LAB_PORT_OFFSET,
                        help="added to every default port")  # fmt: skip
        p_.set_defaults(func=lab_commands.cmd_lab)
    r = actions.add_parser("report", help="summary, charts and report.html again from a run folder")
    r.add_argument("run_dir", type=Path)
    r.set_defaults(func=lab_commands.cmd_lab_report)
    r = actions.add_parser("slides", help="the run's slide deck: slides.html and slides.pdf")
    r.add_argument("run_dir", type=Path, help="a run folder (performance-tests/results/<run>)")
    r.add_argument("--out", type=Path, help="where to write the deck (default: the run folder)")
    r.add_argument("--no-pdf", action="store_true", help="only the HTML deck")
    r.add_argument("--screenshot", type=int, action="append", default=[], help="also a PNG of slide N")
    r.set_defaults(func=lab_commands.cmd_lab_slides)
    return p


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
