// Load shopstream's catalog CSV (scripts/peers/export_catalog.py) into Medusa through its own
// workflows, as its starter's seed script does: a store in USD, its default sales channel (the
// only one: with a second, every store listing resolves the channel's 100,000 product links in
// Node before it queries products, ~5 s a request here), a region with
// Portugal (the lab's shipping country), a stock location with a manual fulfillment set and a
// flat shipping option, a publishable API key, a category per shop category, and each product
// with one variant (SKU, price) whose inventory item is stocked at the location.
// Run: `npx medusa exec ./src/scripts/load-catalog.ts <csv>`; writes peers-medusa.json beside the CSV.
import { readFileSync, writeFileSync } from "fs"
import { dirname, join } from "path"
import { ExecArgs } from "@medusajs/framework/types"
import { ContainerRegistrationKeys, Modules, ProductStatus } from "@medusajs/framework/utils"
import {
  createApiKeysWorkflow,
  createInventoryLevelsWorkflow,
  createProductCategoriesWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createShippingOptionsWorkflow,
  createShippingProfilesWorkflow,
  createStockLocationsWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  linkSalesChannelsToStockLocationWorkflow,
  updateStoresWorkflow,
} from "@medusajs/medusa/core-flows"

const BATCH = Number(process.env.MEDUSA_LOAD_BATCH || 500)

function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = []
  let row: string[] = [], field = "", quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++ }
      else if (c === '"') quoted = false
      else field += c
    } else if (c === '"') quoted = true
    else if (c === ",") { row.push(field); field = "" }
    else if (c === "\n") { row.push(field.replace(/\r$/, "")); rows.push(row); row = []; field = "" }
    else field += c
  }
  if (field || row.length) { row.push(field); rows.push(row) }
  const [head, ...body] = rows
  return body.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])))
}

export default async function loadCatalog({ container, args }: ExecArgs) {
  const logger = container.resolve(ContainerRegistrationKeys.LOGGER)
  const query = container.resolve(ContainerRegistrationKeys.QUERY)
  const link = container.resolve(ContainerRegistrationKeys.LINK)
  const fulfillment = container.resolve(Modules.FULFILLMENT)
  const rows = parseCsv(readFileSync(args[0], "utf8"))
  const out = join(dirname(args[0]), "peers-medusa.json")

  const { data: loaded } = await query.graph({ entity: "product", fields: ["id"], pagination: { take: 1 } })
  let setup: Record<string, any>
  if (loaded.length) {
    setup = JSON.parse(readFileSync(out, "utf8"))
    logger.info("products already loaded: setup kept")
  } else {
    const { data: [store] } = await query.graph({
      entity: "store", fields: ["id", "default_sales_channel_id"],
    })
    const channel = { id: store.default_sales_channel_id as string }
    await updateStoresWorkflow(container).run({
      input: {
        selector: { id: store.id },
        update: { supported_currencies: [{ currency_code: "usd", is_default: true }] },
      },
    })
    const { result: [region] } = await createRegionsWorkflow(container).run({
      input: { regions: [{ name: "Portugal", currency_code: "usd", countries: ["pt"],
                           payment_providers: ["pp_system_default"] }] },
    })
    const { result: [location] } = await createStockLocationsWorkflow(container).run({
      input: { locations: [{ name: "Shopstream warehouse",
                             address: { city: "Lisbon", country_code: "PT", address_1: "1 Benchmark Way" } }] },
    })
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_provider_id: "manual_manual" },
    })
    const { result: [profile] } = await createShippingProfilesWorkflow(container).run({
      input: { data: [{ name: "Default", type: "default" }] },
    })
    const set = await fulfillment.createFulfillmentSets({
      name: "Warehouse delivery", type: "shipping",
      service_zones: [{ name: "Portugal", geo_zones: [{ country_code: "pt", type: "country" }] }],
    })
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_set_id: set.id },
    })
    const { result: [option] } = await createShippingOptionsWorkflow(container).run({
      input: [{
        name: "Standard", price_type: "flat", provider_id: "manual_manual",
        service_zone_id: set.service_zones[0].id, shipping_profile_id: profile.id,
        type: { label: "Standard", description: "Standard shipping", code: "standard" },
        prices: [{ currency_code: "usd", amount: 5 }, { region_id: region.id, amount: 5 }],
        rules: [{ attribute: "enabled_in_store", value: "true", operator: "eq" },
                { attribute: "is_return", value: "false", operator: "eq" }],
      }],
    })
    await linkSalesChannelsToStockLocationWorkflow(container).run({
      input: { id: location.id, add: [channel.id] },
    })
    const { result: [key] } = await createApiKeysWorkflow(container).run({
      input: { api_keys: [{ title: "Webshop", type: "publishable", created_by: "" }] },
    })
    await linkSalesChannelsToApiKeyWorkflow(container).run({ input: { id: key.id, add: [channel.id] } })
    const names = [...new Set(rows.map((r) => r.category))].sort()
    const { result: categories } = await createProductCategoriesWorkflow(container).run({
      input: { product_categories: names.map((name) => ({ name, is_active: true })) },
    })
    setup = {
      publishable_key: key.token, region_id: region.id, sales_channel_id: channel.id,
      location_id: location.id, shipping_profile_id: profile.id, shipping_option_id: option.id,
      categories: Object.fromEntries(categories.map((c: any) => [c.name, c.id])),
    }
    writeFileSync(out, JSON.stringify(setup))
  }

  const started = Date.now()
  for (let start = 0; start < rows.length && !loaded.length; start += BATCH) {
    const chunk = rows.slice(start, start + BATCH)
    const { result: products } = await createProductsWorkflow(container).run({
      input: {
        products: chunk.map((r) => ({
          title: r.name, handle: r.sku.toLowerCase(), description: r.description,
          status: ProductStatus.PUBLISHED, category_ids: [setup.categories[r.category]],
          shipping_profile_id: setup.shipping_profile_id, metadata: { brand: r.brand },
          sales_channels: [{ id: setup.sales_channel_id }],
          options: [{ title: "Default", values: ["Default"] }],
          variants: [{ title: "Default", sku: r.sku, manage_inventory: true,
                       options: { Default: "Default" },
                       prices: [{ amount: Number(r.price_cents) / 100, currency_code: "usd" }] }],
        })),
      },
    })
    const skus = Object.fromEntries(chunk.map((r) => [r.sku, Number(r.stock)]))
    const { data: items } = await query.graph({
      entity: "inventory_item", fields: ["id", "sku"], filters: { sku: Object.keys(skus) },
    })
    await createInventoryLevelsWorkflow(container).run({
      input: { inventory_levels: items.map((i: any) => ({
        inventory_item_id: i.id, location_id: setup.location_id, stocked_quantity: skus[i.sku] })) },
    })
    const done = start + products.length
    if (done % 5000 === 0 || done === rows.length) {
      logger.info(`loaded ${done} products, ${((Date.now() - started) / 1000).toFixed(0)} s`)
    }
  }
  logger.info(`catalog loaded in ${((Date.now() - started) / 1000).toFixed(0)} s`)
}
