-- A login storm: HTTP Basic with a wrong password for a fresh username on every request, so
-- neither the credential cache nor the lockout can answer: each request costs one password hash
-- (the backend's dummy verification for unknown users). Prints STORM_RESULT with the statuses.
local counter = 0
statuses = {}
local prefix
local threads = {}

setup = function(thread)
  thread:set("id", tostring(math.random(1, 1e9)))
  threads[#threads + 1] = thread
end

init = function(args)
  prefix = "storm-" .. id .. "-"
end

request = function()
  counter = counter + 1
  local creds = prefix .. counter .. ":wrong-password"
  return wrk.format(nil, nil, { ["Authorization"] = "Basic " .. base64(creds) })
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
function base64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d?%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return alphabet:sub(c + 1, c + 1)
  end) .. ({ "", "==", "=" })[#data % 3 + 1])
end

done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  local counts = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do counts[status] = (counts[status] or 0) + n end
  end
  local by_status = ""
  for status, n in pairs(counts) do by_status = by_status .. string.format(" status_%d=%d", status, n) end
  io.write(string.format("STORM_RESULT requests=%d rps=%.1f p50_us=%d p99_us=%d socket_errors=%d%s\n",
    summary.requests, summary.requests / s, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    by_status))
end
