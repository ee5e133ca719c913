-- GET /api/v1/storage/{bucket}?prefix=k/NN/&limit=50: one of the seeded objects' 100 prefixes
-- at random, anonymously (the bucket is public).
dofile(os.getenv("BENCH_D") .. "/common.lua")

local bucket = os.getenv("BENCH_BUCKET") or error("BENCH_BUCKET is not set")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", string.format("/api/v1/storage/%s?prefix=k/%02d/&limit=50", bucket, math.random(0, 99)))
end
