"""Load shopstream's catalog CSV into Oscar through its own models (bulk_create): one product
class, a category tree root per shop category (treebeard), a text attribute "brand", one partner
and a stock record (price, stock) per product. The product's UPC is shopstream's SKU."""

import csv
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from oscar.core.loading import get_model

Product = get_model("catalogue", "Product")
ProductClass = get_model("catalogue", "ProductClass")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductAttribute = get_model("catalogue", "ProductAttribute")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
Category = get_model("catalogue", "Category")
Partner = get_model("partner", "Partner")
StockRecord = get_model("partner", "StockRecord")
Country = get_model("address", "Country")
BATCH = 5000


class Command(BaseCommand):
    help = "load the shared catalog CSV (scripts/peers/export_catalog.py) into Oscar"

    def add_arguments(self, parser):
        parser.add_argument("csv")

    @transaction.atomic
    def handle(self, *args, **options):
        with open(options["csv"]) as fh:
            rows = list(csv.DictReader(fh))
        if (
            Product.objects.count() == len(rows)
            and Product.objects.filter(upc=rows[-1]["sku"]).exists()
        ):
            self.stdout.write(f"{len(rows)} products already loaded")
            return
        Product.objects.all().delete()
        pclass, _ = ProductClass.objects.get_or_create(
            name="Goods", defaults={"requires_shipping": True, "track_stock": True}
        )
        brand, _ = ProductAttribute.objects.get_or_create(
            product_class=pclass, code="brand", defaults={"name": "Brand", "type": "text"}
        )
        # the lab ships to one country (oscar_populate_countries needs pycountry)
        Country.objects.get_or_create(
            iso_3166_1_a2="PT",
            defaults={
                "iso_3166_1_a3": "PRT",
                "iso_3166_1_numeric": "620",
                "name": "Portugal",
                "printable_name": "Portugal",
                "is_shipping_country": True,
            },
        )
        partner, _ = Partner.objects.get_or_create(name="Shopstream warehouse")
        categories = {}
        for name in sorted({r["category"] for r in rows}):
            found = Category.objects.filter(name=name).first()
            categories[name] = found or Category.add_root(name=name)
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            products = Product.objects.bulk_create(
                Product(
                    structure="standalone",
                    upc=r["sku"],
                    title=r["name"],
                    description=r["description"],
                    product_class=pclass,
                    is_public=True,
                )
                for r in chunk
            )
            ProductCategory.objects.bulk_create(
                ProductCategory(product=p, category=categories[r["category"]])
                for p, r in zip(products, chunk, strict=True)
            )
            ProductAttributeValue.objects.bulk_create(
                ProductAttributeValue(product=p, attribute=brand, value_text=r["brand"])
                for p, r in zip(products, chunk, strict=True)
            )
            StockRecord.objects.bulk_create(
                StockRecord(
                    product=p,
                    partner=partner,
                    partner_sku=r["sku"],
                    price_currency="USD",
                    price=Decimal(r["price_cents"]) / 100,
                    num_in_stock=int(r["stock"]),
                    num_allocated=0,
                )
                for p, r in zip(products, chunk, strict=True)
            )
        self.stdout.write(f"loaded {len(rows)} products")
