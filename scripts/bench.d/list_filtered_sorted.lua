-- GET one page of a random category, highest score first (served by the (category, score) index).
dofile(os.getenv("BENCH_D") .. "/common.lua")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", "/api/v1/" .. COLLECTION .. "?filter=category:eq:cat-"
    .. math.random(0, 99) .. "&sort=-score&limit=20")
end
