-- GET /api/v1/bench_items/count for a random category (counts are cached per SQLite reader
-- until the data changes; this scenario makes no writes).
dofile(os.getenv("BENCH_D") .. "/common.lua")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", "/api/v1/" .. COLLECTION .. "/count?filter=category:eq:cat-" .. math.random(0, 99))
end
