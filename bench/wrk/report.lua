-- Prints one parseable line when wrk finishes; run.sh reads it. Latencies are in microseconds.
-- `http_errors` counts responses with status >= 400 (wrk's `errors.status`), `socket_errors`
-- failed connects, reads, writes and timeouts: a target with either is not a valid measurement.
done = function(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "WRK_RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d http_errors=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
