"""The ``shopstream compose`` verb: build, up (waves, health, URLs), down (volumes optional)."""

from __future__ import annotations

import argparse
import sys

from shopstream.config import PROJECT_ROOT
from shopstream_tools.compose import engine as engines
from shopstream_tools.compose.stack import Stack


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = sub.add_parser(
        "compose", help="build the images and run docker-compose.yml with podman or Docker"
    )
    s.add_argument("action", choices=["up", "down", "build", "compare"],
                   help="compare: the stack beside the local processes (start, memory, orders/s)")  # fmt: skip
    s.add_argument("--no-build", action="store_true", help="up: use the images already built")
    s.add_argument("--volumes", action="store_true", help="down: delete the data volumes too")
    s.add_argument("--project", default="shopstream", help="compose project name")
    s.add_argument("--tag", default="0.1.0", help="tag of shopstream's images")
    s.add_argument("--port-offset", type=int, default=0, help="added to every published port")
    s.add_argument(
        "--standins",
        choices=["auto", "yes", "no"],
        default="auto",
        help="Debian-made base and tool images instead of the registry's (auto: when unreachable)",
    )
    s.add_argument("--profile", action="append", default=[], help="compose profile to enable")
    s.add_argument("--rate", type=float, default=150.0, help="compare: async orders per second")
    s.add_argument("--seconds", type=float, default=20.0, help="compare: length of the load")
    s.set_defaults(func=run)


def stack_for(args: argparse.Namespace) -> Stack:
    engine = engines.find()
    if engine is None:
        raise SystemExit("neither podman nor Docker can run containers on this machine")
    standins = {"yes": True, "no": False}.get(args.standins)
    if standins is None:
        standins = not engines.registry_reachable()
    return Stack(
        engine,
        project=args.project,
        tag=args.tag,
        port_offset=args.port_offset,
        standins=standins,
        profiles=tuple(args.profile),
    )


def run(settings: object, args: argparse.Namespace) -> int:
    stack = stack_for(args)
    if args.action == "down":
        stack.down(volumes=args.volumes)
        return 0
    if args.action == "compare":
        from shopstream_tools.compose import compare

        result = compare.compare(stack, compare.Load(rate=args.rate, seconds=args.seconds))
        print(compare.table(result))
        return 0
    if args.action == "build" or not args.no_build:
        origin = "Debian stand-ins" if stack.standins else "public base images"
        print(f"building with {stack.engine.name} ({origin})", flush=True)
        seconds = stack.build(str(PROJECT_ROOT / "data-containers" / "base"))
        for tag, took in seconds.items():
            print(f"  {tag:<52} {took:6.1f}s")
        if args.action == "build":
            return 0
    try:
        took = stack.up()
    except (TimeoutError, RuntimeError) as problem:
        print(f"compose stack not healthy: {problem}", file=sys.stderr)
        return 1
    print(f"compose stack {args.project} healthy in {took:.0f}s ({stack.engine.name})")
    for line in stack.urls():
        print(f"  {line}")
    return 0
