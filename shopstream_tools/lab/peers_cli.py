"""Entry of the peers comparison (scripts/peers/run.sh starts the platforms, then calls this):
`python -m shopstream_tools.lab.peers_cli --out DIR --users 50 --seconds 30`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import httpx

from shopstream_tools.lab import peers, peers_oversell, peers_report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--users", type=int, nargs="+", default=[50])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--oscar-pid", type=int, required=True, help="the gunicorn master")
    args = ap.parse_args()
    data = Path(os.environ["SHOPSTREAM_DATA_DIR"])
    postmaster = peers._pid(data / "postgres" / "postmaster.pid")
    shop = f"http://127.0.0.1:{os.environ['SHOPSTREAM_GATEWAY_PORT']}"
    oscar = f"http://127.0.0.1:{os.environ['OSCAR_PORT']}"
    hosts = {"shopstream": shop, "oscar": oscar}
    roots = {
        # the gateway's nginx runs outside supervisord
        "shopstream": [
            peers._pid(data / p) for p in ("supervisor/supervisord.pid", "gateway/nginx.pid")
        ],
        "oscar": [args.oscar_pid],
    }
    results = peers.run(hosts, roots, postmaster, args.users, args.seconds, args.out)
    product = httpx.get(f"{shop}/products?in_stock=true&limit=1", timeout=30).json()["items"][0][
        "id"
    ]
    pg_port = int(os.environ["SHOPSTREAM_POSTGRES_PORT"])
    checks = {"shopstream": peers_oversell.shopstream(shop, product, 20, 50),
              "oscar": peers_oversell.oscar(oscar, 2, 20, 50, pg_port)}  # fmt: skip
    (args.out / "results.json").write_text(
        json.dumps({"results": results, "oversell": checks}, indent=1)
    )
    (args.out / "table.md").write_text(peers_report.table(results))
    peers_report.chart(results, args.out / "peers.png")
    print(peers_report.table(results))
    print(json.dumps(checks, indent=1))


if __name__ == "__main__":
    main()
