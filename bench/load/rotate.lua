-- wrk script of bench/load: each connection sends GETs rotating over the request targets listed
-- in a file (one per line, given after `--`), each thread starting at its own offset; when done,
-- prints the figures as one JSON line prefixed with WRK_JSON for run.py to read.
-- Requests are formatted once in init: the per-request Lua cost stays a table lookup, so wrk
-- measures the server and not itself.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local prepared = {}
local i = 0

function init(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do
    if #line > 0 then
      prepared[#prepared + 1] = wrk.format("GET", line)
    end
  end
  f:close()
  assert(#prepared > 0, "no request targets in " .. args[1])
  local n = tonumber(args[2]) or 1
  i = math.floor((id or 0) * #prepared / n)
end

function request()
  i = i % #prepared + 1
  return prepared[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
