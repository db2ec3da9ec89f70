-- Shared by the wrk scripts of `shopstream bench`: per-thread random seeds, a pool of client ids
-- (the gateway rate-limits per X-Client-Id), and a done() that prints one JSON line.
local common = {}

-- 1024 clients: each stays far below the gateway's per-client rate, and the limiter's zone stays small.
common.CLIENTS = 1024
common.USER_AGENT = "shopstream-bench"

local threads = {}
local counter = 0

-- Runs in the main Lua state once per thread, before the thread starts.
function common.setup(thread)
   counter = counter + 1
   thread:set("thread_seed", os.time() * 1000 + counter * 7919)
   table.insert(threads, thread)
end

-- Runs in each thread's own Lua state: LuaJIT's math.random is unseeded by default, so without
-- this every thread would draw the same sequence.
function common.seed()
   math.randomseed(thread_seed or os.time())
   for _ = 1, 10 do math.random() end
end

function common.get(path)
   local client = math.random(1, common.CLIENTS)
   local headers = {
      ["X-Client-Id"] = "bench-" .. client,
      ["User-Agent"] = common.USER_AGENT,
      ["Accept"] = "application/json",
   }
   if common.tokens() then
      -- client n is signed in as customer n: the services verify each token once, then cache it
      headers["Authorization"] = "Bearer " .. common.TOKENS[(client - 1) % #common.TOKENS + 1]
   end
   return wrk.format("GET", path, headers)
end

-- SHOPSTREAM_BENCH_TOKENS names a file of bearer tokens, one a line (`shopstream bench` writes it
-- unless --anonymous); without it the requests are anonymous.
function common.tokens()
   if common.TOKENS == nil then
      local file = os.getenv("SHOPSTREAM_BENCH_TOKENS")
      common.TOKENS = (file and #file > 0) and common.lines(file) or false
   end
   return common.TOKENS
end

function common.lines(path)
   local items = {}
   for line in io.lines(path) do
      if #line > 0 then items[#items + 1] = line end
   end
   assert(#items > 0, "no lines in " .. path)
   return items
end

function common.done(summary, latency, requests)
   local e = summary.errors
   local parts = {
      string.format('"requests":%d', summary.requests),
      string.format('"duration_us":%d', summary.duration),
      string.format('"bytes":%d', summary.bytes),
      string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
         e.connect, e.read, e.write, e.status, e.timeout),
      string.format('"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,'
         .. '"p50":%d,"p90":%d,"p99":%d,"p99.9":%d}',
         latency.min, latency.mean, latency.stdev, latency.max,
         latency:percentile(50), latency:percentile(90), latency:percentile(99),
         latency:percentile(99.9)),
   }
   io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end

return common
