"""Write shopstream's deterministic catalog (the generator `shopstream seed` uses) as CSV, so each
peer loads the very same products through its own import path."""

import csv
import sys

from services.product.entrypoints.seed import generate

FIELDS = ("id", "sku", "name", "description", "category", "brand", "price_cents", "stock")


def main(count: int, path: str) -> None:
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(FIELDS)
        for row in generate(count):
            out.writerow(row[:8])


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
