-- POST a new record, shaped like the seeded ones.
dofile(os.getenv("BENCH_D") .. "/common.lua")

local n = 0

function init(args)
  seed_random()
end

function request()
  n = n + 1
  local body = string.format(
    '{"title":"created %d-%d by wrk","category":"cat-%d","score":%d,"active":%s}',
    thread_no or 0, n, math.random(0, 99), math.random(0, 9999),
    (n % 2 == 0) and "true" or "false")
  return wrk.format("POST", "/api/v1/" .. COLLECTION, JSON_HEADERS, body)
end
