-- wrk script for benchmarks/live_bench.py: POST canonical purchases, each with
-- its own event_id, spread over CUSTOMERS customers.
--
-- Settings come from the environment: LIVE_KEY (an API key with the ingest
-- scope), LIVE_PREFIX (makes event ids unique across runs), LIVE_CUSTOMERS.
-- Times start an hour ago and step one millisecond per request, so each
-- customer's purchases arrive in the order they happened (run wrk with one
-- thread, -t1, to keep that true).

local key = os.getenv("LIVE_KEY") or ""
local prefix = os.getenv("LIVE_PREFIX") or "W"
local customers = tonumber(os.getenv("LIVE_CUSTOMERS") or "1000")
local start_s = os.time() - 3600
local sent = 0

wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"

local function occurred_at(n)
  local seconds = start_s + math.floor(n / 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", seconds) .. string.format(".%03dZ", n % 1000)
end

request = function()
  sent = sent + 1
  local body = string.format(
    '{"event_id":"%s-%09d","type":"purchase","occurred_at":"%s",'
      .. '"currency":"GBP","total":"%d.00","customer":{"customer_id":"C%d"}}',
    prefix, sent, occurred_at(sent), 10 + sent % 50, sent % customers
  )
  return wrk.format(nil, nil, nil, body)
end

-- Count answers that are not 200/202, so a run that failed cannot pass for fast.
local bad = 0
response = function(status, headers, body)
  if status ~= 200 and status ~= 202 then
    bad = bad + 1
    if bad <= 3 then
      io.stderr:write("unexpected ", status, ": ", body:sub(1, 200), "\n")
    end
  end
end

done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f errors=%d non2xx=%d p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000
  ))
end
