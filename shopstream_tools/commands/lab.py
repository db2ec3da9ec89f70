"""`shopstream` commands that measure: bench, lab (runs, report, slides) and perf-check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shopstream.config import Settings


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from shopstream_tools.bench import run_product_benchmark

    return run_product_benchmark(settings, args)


def cmd_lab(settings: Settings, args: argparse.Namespace) -> int:
    """Run the performance lab's tests against its own platform (data-lab/, ports +8000)."""

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
            loadgen=args.loadgen,
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


def cmd_perf_check(settings: Settings, args: argparse.Namespace) -> int:
    import fcntl

    from shopstream_tools.perf import check

    plan = check.Plan(order_rate=args.order_rate, order_seconds=args.order_seconds,
                      warmup_rate=args.warmup_rate, tracing_ratio=args.tracing)  # fmt: skip
    # One benchmark at a time on this machine: two would measure each other.
    with open(check.BENCH_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return check.run(plan, args.profile, args.update_baseline, args.keep_up, args.runs)
