"""`shopstream` commands that run the platform: up, down, status, logs, scale, tokens, data
(seed, reset, migrate, backup, restore) and fault injection."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

from shopstream.config import SERVICES, Settings


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
        f"{'process':<18}{'pid':>8}{'port':>7}  {'health':<13}{'rss MB':>8}{'restarts':>9}  command"
    )
    for r in rows:
        print(
            f"{r.name:<18}{r.pid or '-':>8}{r.port or '-':>7}  {r.health:<13}{r.rss_mb:>8.0f}"
            f"{r.restarts:>9}  {r.program}"
        )
    # the HA profile's PostgreSQL nodes show their role (and a standby not streaming, its state)
    healthy = ("up", "ready", "primary", "sync standby", "standby")
    return 0 if all(r.health in healthy for r in rows) else 1


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


def cmd_gateway_cert(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import gateway_tls

    issued = gateway_tls.issue(gateway_tls.tls_dir(settings), args.out, args.name, "gateway")
    print(f"{issued.cert}\n{issued.key} (private)\n{args.out / 'ca.crt'}: what clients trust")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from services.product.entrypoints.seed import seed_catalog

    count = asyncio.run(seed_catalog(settings, args.products, force=args.force))
    print(f"catalog holds {count} seeded products")
    if args.orders:
        from shopstream_tools.history_load import load_orders

        report = asyncio.run(load_orders(settings, args.orders))
        print(report.summary())
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

    unknown = set(args.services) - set(SERVICES)
    if unknown:
        print(f"migrate: unknown services {sorted(unknown)} (known: {', '.join(SERVICES)})")
        return 2
    for service, versions in platform.migrate_all(settings, tuple(args.services)).items():
        print(f"{service}: {', '.join(versions) or 'up to date'}")
    return 0


def cmd_rotate_db_passwords(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.runtime import database_roles, exporters, postgres_ha, supervision

    try:
        rotated = asyncio.run(database_roles.rotate_local_passwords(settings, tuple(args.roles)))
    except ValueError as exc:
        print(f"rotate-db-passwords: {exc}")
        return 2
    if settings.postgres_admin_user in rotated and supervision.supervised(
        settings, exporters.POSTGRES_EXPORTER
    ):  # it read the admin's password file when it started
        supervision.restart(settings, exporters.POSTGRES_EXPORTER)
    if settings.postgres_admin_user in rotated and postgres_ha.enabled(settings):
        postgres_ha.reload(settings)  # Patroni logs in as the admin: its files get the new one
    print(f"new passwords for {', '.join(rotated)} (in {settings.postgres_credentials_path})")
    return 0


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
