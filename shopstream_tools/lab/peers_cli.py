"""Entry of the peers comparison (scripts/peers/run.sh starts the platforms, then calls this):
`python -m shopstream_tools.lab.peers_cli --out DIR --users 50 --seconds 30`."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from services.product.entrypoints.seed import CATALOG
from shopstream import auth
from shopstream.config import Settings
from shopstream_tools.bench import price_windows
from shopstream_tools.lab import peers, peers_oversell, peers_report
from shopstream_tools.lab.workload import LAB_TOKEN_SECONDS, customers

# orders are placed of products with 10 or more free units on every platform (as shopstream's
# `products`), so an order that fails is a failure, not a product seeded out of stock
MEDUSA_IN_STOCK = """SELECT v.id FROM product_variant v
    JOIN product_variant_inventory_item pvi ON pvi.variant_id = v.id AND pvi.deleted_at IS NULL
    JOIN inventory_level l ON l.inventory_item_id = pvi.inventory_item_id AND l.deleted_at IS NULL
    WHERE l.stocked_quantity - l.reserved_quantity >= 10"""
OSCAR_IN_STOCK = (
    "SELECT product_id FROM partner_stockrecord WHERE num_in_stock - num_allocated >= 10"
)
SHOPPERS = 200  # signed-in customers the Locust users draw from, as the lab's


def _sql(pg_port: int, database: str, sql: str) -> list[list[str]]:
    rows = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "shopstream", "-d", database,
         "-AtF", "\t", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    return [row.split("\t") for row in rows]


def _medusa(pg_port: int, setup: Path) -> dict[str, Any]:
    """The setup the Medusa loader wrote (publishable key, region, categories, shipping option)
    and its product and variant ids."""
    return json.loads(setup.read_text()) | {
        "products": [r[0] for r in _sql(pg_port, "medusa", "SELECT id FROM product")],
        "variants": [r[0] for r in _sql(pg_port, "medusa", MEDUSA_IN_STOCK)],
    }


def workload(settings: Settings, shop: str, pg_port: int, medusa: Path | None) -> dict[str, Any]:
    """What the Locust users need: shopstream's whole catalog (product pages are drawn from it, as
    Oscar's from its ids 1..N, so neither is read from a small hot set), products in stock to
    order, the lab's search price windows, customers with the bearer tokens the local issuer
    mints for them (as the lab's workload does), Oscar's category ids."""
    auth.ensure_local_issuer(settings)
    products: list[str] = []
    cursor = ""
    for _ in range(5):  # 500 products in stock, so orders do not empty a few of them
        page = httpx.get(
            f"{shop}/products?in_stock=true&limit=100" + (f"&cursor={cursor}" if cursor else ""),
            timeout=30,
        ).json()
        products += [p["id"] for p in page["items"] if p["stock"] >= 10]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            break
    return {
        "products": products,
        "customers": [
            [c, auth.customer_token(settings, c, LAB_TOKEN_SECONDS)] for c in customers(SHOPPERS)
        ],
        "admin_token": auth.admin_token(settings, LAB_TOKEN_SECONDS),
        "catalog": [row[0] for row in _sql(pg_port, "product", "SELECT id FROM products")],
        "windows": [
            [w.category, w.min_low, w.min_high, w.width_low, w.width_high] for w in price_windows()
        ],
        "kinds": {category: kinds for category, (kinds, _, _) in CATALOG.items()},
        "medusa": _medusa(pg_port, medusa) if medusa else {},
        "oscar_order_products": [int(r[0]) for r in _sql(pg_port, "oscar", OSCAR_IN_STOCK)],
        "oscar_categories": {
            name: int(pk)
            for name, pk in _sql(pg_port, "oscar", "SELECT name, id FROM catalogue_category")
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--users", type=int, nargs="+", default=[50])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--order-seconds", type=int, default=60, help="steps of orders: at least this")
    ap.add_argument("--open-rates", nargs="*", default=[], metavar="WORK=RATE",
                    help="open-loop steps, e.g. by_id=10 search=0.5 category=4 order=0.4")  # fmt: skip
    ap.add_argument("--open-seconds", type=int, default=60)
    ap.add_argument("--resume", action="store_true",
                    help="keep the steps --out's results.json has and run the rest")  # fmt: skip
    ap.add_argument("--oscar-pid", type=int, required=True, help="the gunicorn master")
    ap.add_argument(
        "--medusa-pid", type=int, help="the `medusa start` node process (no pid: no Medusa)"
    )
    ap.add_argument("--medusa-setup", type=Path, help="the JSON the Medusa loader wrote")
    args = ap.parse_args()
    settings = Settings.from_env()
    data = settings.data_path
    postmaster = peers._pid(data / "postgres" / "postmaster.pid")
    shop = f"http://127.0.0.1:{settings.gateway_port}"
    oscar = f"http://127.0.0.1:{os.environ['OSCAR_PORT']}"
    pg_port = settings.postgres_port
    args.out.mkdir(parents=True, exist_ok=True)
    work = workload(settings, shop, pg_port, args.medusa_setup if args.medusa_pid else None)
    (args.out / "peers-data.json").write_text(json.dumps(work))
    hosts = {"shopstream": shop, "oscar": oscar}
    roots = {
        # the gateway's nginx runs outside supervisord
        "shopstream": [
            peers._pid(data / p) for p in ("supervisor/supervisord.pid", "gateway/nginx.pid")
        ],
        "oscar": [args.oscar_pid],
    }
    if args.medusa_pid:
        hosts["medusa"] = f"http://127.0.0.1:{os.environ['MEDUSA_PORT']}"
        roots["medusa"] = [args.medusa_pid]
    rates = {k: float(v) for k, _, v in (pair.partition("=") for pair in args.open_rates)}
    kept = args.out / "results.json"
    done = json.loads(kept.read_text()) if args.resume and kept.exists() else {}
    done = done.get("results", done)  # a finished run's file holds the oversell checks too
    results = peers.run(
        hosts, roots, postmaster, args.users, args.seconds, args.out, args.order_seconds,
        open_rates=rates, open_seconds=args.open_seconds, done=done,
    )
    buyers = [tuple(c) for c in work["customers"][:50]]
    product, admin = work["products"][0], work["admin_token"]
    checks = {
        "shopstream": peers_oversell.shopstream(shop, product, 20, buyers, admin),
        "shopstream_async": peers_oversell.shopstream(shop, product, 20, buyers, admin, "async"),
        "oscar": peers_oversell.oscar(oscar, 2, 20, 50, pg_port),
    }
    if args.medusa_pid:
        sku = _sql(
            pg_port, "product", f"SELECT sku FROM products WHERE id = '{work['products'][0]}'"
        )
        checks["medusa"] = peers_oversell.medusa(
            hosts["medusa"], work["medusa"], sku[0][0], 20, 50, pg_port
        )
    (args.out / "results.json").write_text(
        json.dumps({"results": results, "oversell": checks}, indent=1)
    )
    (args.out / "table.md").write_text(
        peers_report.table(results) + "\n" + peers_report.open_table(results)
    )
    peers_report.chart(results, args.out / "peers.png")
    print(peers_report.table(results))
    print(peers_report.open_table(results))
    print(json.dumps(checks, indent=1))


if __name__ == "__main__":
    main()
