-- GET a random page of 20 bench_posts with their authors inlined (expand: one extra query
-- per page, not one per record).
dofile(os.getenv("BENCH_D") .. "/common.lua")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", "/api/v1/bench_posts?expand=author&limit=20&page=" .. math.random(1, 100))
end
