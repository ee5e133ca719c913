-- The tables surface: a random page of 20 bench_posts with their authors embedded through the
-- relation (select=title,author(name)): one extra query per page, not one per row.
dofile(os.getenv("BENCH_D") .. "/common.lua")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", "/api/v1/tables/bench_posts?select=title,author(name)&limit=20&offset="
    .. (math.random(1, 100) - 1) * 20)
end
