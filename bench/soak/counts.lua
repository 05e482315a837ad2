-- wrk script: counts responses by status class across threads; prints one WRKCOUNTS line.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  c2, c3, c4, c5 = 0, 0, 0, 0
end

function response(status, headers, body)
  if status >= 500 then c5 = c5 + 1
  elseif status >= 400 then c4 = c4 + 1
  elseif status >= 300 then c3 = c3 + 1
  else c2 = c2 + 1 end
end

function done(summary, latency, requests)
  local t2, t3, t4, t5 = 0, 0, 0, 0
  for _, th in ipairs(threads) do
    t2 = t2 + th:get("c2"); t3 = t3 + th:get("c3")
    t4 = t4 + th:get("c4"); t5 = t5 + th:get("c5")
  end
  local e = summary.errors
  io.write(string.format("WRKCOUNTS total=%d s2xx=%d s3xx=%d s4xx=%d s5xx=%d sockerr=%d p99ms=%.1f\n",
    summary.requests, t2, t3, t4, t5, e.connect + e.read + e.write + e.timeout,
    latency:percentile(99) / 1000))
end
