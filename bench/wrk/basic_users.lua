-- HTTP Basic over many users: each request carries the next user's `Authorization` header,
-- cycling through the file named by env BENCH_BASIC_HEADERS (one complete header value per line).
local headers = {}
local next_user = 0

init = function(args)
  local path = assert(os.getenv("BENCH_BASIC_HEADERS"), "BENCH_BASIC_HEADERS is not set")
  for line in io.lines(path) do
    headers[#headers + 1] = line
  end
  assert(#headers > 0, "no users in " .. path)
end

request = function()
  next_user = next_user % #headers + 1
  return wrk.format(nil, nil, { ["Authorization"] = headers[next_user] })
end

-- The shared `done` that prints the WRK_RESULT line.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
