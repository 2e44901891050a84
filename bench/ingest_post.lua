-- wrk script for bench/ingest_bench.py: POSTs one fixed body over keep-alive connections and
-- prints a machine-readable summary (wrk's own output has no p99.9).
-- Environment: BENCH_BODY_FILE, BENCH_PATH, BENCH_CONTENT_TYPE, BENCH_TARGET (X-Amz-Target,
-- optional), BENCH_DELAY_MS (pause per request and connection, integer ms; 0: none).
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/"
wrk.headers["Content-Type"] = os.getenv("BENCH_CONTENT_TYPE") or "application/json"
local target = os.getenv("BENCH_TARGET")
if target and target ~= "" then wrk.headers["X-Amz-Target"] = target end
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d connect_errors=%d read_errors=%d write_errors=%d " ..
    "timeouts=%d status_errors=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
