-- GET /api/v1/bench_items/aggregate: the average score of a random category.
dofile(os.getenv("BENCH_D") .. "/common.lua")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", "/api/v1/" .. COLLECTION .. "/aggregate?op=avg&field=score&filter=category:eq:cat-"
    .. math.random(0, 99))
end
