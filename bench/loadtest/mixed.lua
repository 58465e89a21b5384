-- Mixed GET traffic for wrk, one traffic class per wrk process.
--
--   wrk -t1 -c10 -d60s -s mixed.lua http://127.0.0.1:8000 -- paths.txt 500 1500
--
-- paths.txt holds one request path per line; each connection cycles through them
-- from its own starting point. Paths under /ajax/ carry `HX-Request: true` as
-- htmx sends it. The two optional numbers are the think time of a user between
-- two requests, drawn uniformly in [min, max] ms (0 0: back-to-back requests).
-- done() prints one line "WRK_JSON {...}" with counts, errors, status codes and
-- latency percentiles in microseconds.

local paths = {}
local think_min, think_max = 0, 0
local counter = 0
-- Global, not local: done() reads it from each thread with thread:get().
statuses = {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    if #line > 0 then
      table.insert(paths, line)
    end
  end
  file:close()
  think_min = tonumber(args[2] or "0")
  think_max = tonumber(args[3] or "0")
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  counter = math.random(#paths)
end

function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  if string.sub(path, 1, 6) == "/ajax/" then
    return wrk.format("GET", path, { ["HX-Request"] = "true" })
  end
  return wrk.format("GET", path)
end

function delay()
  if think_max <= 0 then
    return 0
  end
  return math.random(think_min, think_max)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

local function encode(value)
  if type(value) == "table" then
    local parts = {}
    for k, v in pairs(value) do
      table.insert(parts, string.format("%q:%s", tostring(k), encode(v)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return tostring(value)
end

function done(summary, latency, requests)
  local codes = {}
  for _, thread in ipairs(threads) do
    local counted = thread:get("statuses") or {}
    for code, count in pairs(counted) do
      codes[code] = (codes[code] or 0) + count
    end
  end
  local percentiles = {}
  for _, p in ipairs({ 50, 90, 95, 99, 99.9 }) do
    percentiles[tostring(p)] = latency:percentile(p)
  end
  local result = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = summary.errors,
    statuses = codes,
    latency_us = {
      min = latency.min,
      max = latency.max,
      mean = latency.mean,
      stdev = latency.stdev,
      percentiles = percentiles,
    },
  }
  io.write("WRK_JSON " .. encode(result) .. "\n")
end
