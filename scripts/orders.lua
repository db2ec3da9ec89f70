-- wrk script: closed-loop orders, one line each on a random product from a file of ids, a customer
-- from a fixed pool of 200, no Idempotency-Key. MODE=sync|async (default sync), IDS=file of
-- product ids, one a line (default /tmp/product-ids.txt). Prints one RESULT line at the end.
--   psql -h 127.0.0.1 -p 15432 -U shopstream product -Atc \
--     "select id from products where stock >= 200 order by id limit 2000" > /tmp/product-ids.txt
--   TOKEN=$(.venv/bin/shopstream token --admin) MODE=sync wrk -t1 -c8 -d10s -s scripts/orders.lua \
--     http://127.0.0.1:8080
-- TOKEN: an operator's bearer token (it may order for any customer, docs/security.md).
local ids = {}
for line in io.lines(os.getenv("IDS") or "/tmp/product-ids.txt") do ids[#ids + 1] = line end
local mode = os.getenv("MODE") or "sync"
math.randomseed(os.time())
local function uuid()
  local t = "xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx"
  return (string.gsub(t, "x", function() return string.format("%x", math.random(0, 15)) end))
end
local customers = {}
for i = 1, 200 do customers[i] = uuid() end
request = function()
  local body = '{"customer_id":"' .. customers[math.random(#customers)]
    .. '","lines":[{"product_id":"' .. ids[math.random(#ids)] .. '","quantity":1}],'
    .. '"shipping_address":{"name":"Ada","line1":"1 Main St","city":"Paris",'
    .. '"postal_code":"75001","country":"FR"}}'
  local headers = {["Content-Type"] = "application/json"}
  if os.getenv("TOKEN") then headers["Authorization"] = "Bearer " .. os.getenv("TOKEN") end
  return wrk.format("POST", "/orders?mode=" .. mode, headers, body)
end
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT reqs=%d dur_s=%.2f rps=%.1f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f non2xx=%d errors=%d\n",
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
