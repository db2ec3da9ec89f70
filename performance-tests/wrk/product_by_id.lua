-- GET /products/{id} with ids drawn uniformly from a file of product ids (one per line).
-- Usage: wrk ... -s product_by_id.lua http://127.0.0.1:8080 -- <ids file>
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

local ids

function init(args)
   common.seed()
   ids = common.lines(assert(args[1], "pass the ids file after --"))
end

function request()
   return common.get("/products/" .. ids[math.random(1, #ids)])
end
