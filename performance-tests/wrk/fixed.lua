-- Ceiling: nginx's fixed JSON response, with the same per-request Lua work as the targets
-- (a random X-Client-Id header), so the ratio compares servers, not load-generator modes.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local common = dofile(here .. "common.lua")

setup = common.setup
done = common.done

function init(args)
   common.seed()
end

function request()
   return common.get("/fixed")
end
