-- A filtered search: a random category, a random price window inside that category's range,
-- in stock only, cheapest first, one page of 20.
-- Usage: wrk ... -s product_search.lua http://127.0.0.1:8080 -- <windows file>
-- Each line of the windows file: <category (URL-encoded)> <lowest min_price> <highest min_price>
-- <narrowest window> <widest window>, prices in whole currency units. `shopstream bench` writes it
-- and draws pgbench's parameters from the same distribution.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

local windows = {}

function init(args)
   common.seed()
   for _, line in ipairs(common.lines(assert(args[1], "pass the windows file after --"))) do
      local category, lo, hi, narrow, wide = line:match("^(%S+) (%d+) (%d+) (%d+) (%d+)$")
      assert(category, "bad line in windows file: " .. line)
      windows[#windows + 1] = {category, tonumber(lo), tonumber(hi), tonumber(narrow), tonumber(wide)}
   end
end

function request()
   local w = windows[math.random(1, #windows)]
   local min_price = math.random(w[2], w[3])
   local max_price = min_price + math.random(w[4], w[5])
   return common.get(string.format(
      "/products?category=%s&min_price=%d&max_price=%d&in_stock=true&sort=price_asc&limit=20",
      w[1], min_price, max_price))
end
