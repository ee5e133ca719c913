-- Shared by every wrk scenario: loaded with dofile() at the top of each scenario script.
--
-- wrk runs the scenario script once in a main Lua state (which calls setup() per thread and
-- done() at the end) and once more in each thread's own state (which calls init() and
-- request()). Globals therefore do not cross between threads; thread:set() is the only
-- channel from setup() into a thread.

COLLECTION = os.getenv("BENCH_COLLECTION") or "bench_items"
JSON_HEADERS = { ["Content-Type"] = "application/json" }

-- BENCH_DELAY_MS paces each connection: it waits that long before each request (wrk's
-- latency figures leave the wait out), so a client sends at a bounded rate.
local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay() return delay_ms end
end

local threads_started = 0

function setup(thread)
  threads_started = threads_started + 1
  thread:set("thread_no", threads_started)
end

-- Each thread state starts with the same random sequence unless seeded apart.
function seed_random()
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  math.random(); math.random()
end

-- The seeded record ids ($BENCH_IDS_FILE, one per line). Call from init(): it runs in each
-- thread's state only, so the main state does not load them too.
function load_ids()
  local file = os.getenv("BENCH_IDS_FILE") or error("BENCH_IDS_FILE is not set")
  local ids = {}
  for line in io.lines(file) do
    if line ~= "" then ids[#ids + 1] = line end
  end
  if #ids == 0 then error("no ids in " .. file) end
  return ids
end

-- A GET of one of `ids` at random from the bench collection, with `headers` (optional).
function get_random_record(ids, headers)
  return wrk.format("GET", "/api/v1/" .. COLLECTION .. "/" .. ids[math.random(#ids)], headers)
end

-- One machine-readable line, parsed by scripts/bench. Latencies in ms (wrk measures µs).
-- errors = every failed request: non-2xx/3xx statuses (wrk counts status > 399) plus
-- connect, read, write and timeout errors. Any of them makes the figures invalid.
function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCH_RESULT requests=%d seconds=%.2f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
      .. "max_ms=%.2f errors=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors, e.status, e.connect, e.read, e.write, e.timeout))
end
