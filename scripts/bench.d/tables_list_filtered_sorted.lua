-- The tables surface (PostgREST dialect): one page of a random category, highest score first,
-- through the same query compiler and (category, score) index as list_filtered_sorted.
dofile(os.getenv("BENCH_D") .. "/common.lua")

function init(args)
  seed_random()
end

function request()
  return wrk.format("GET", "/api/v1/tables/" .. COLLECTION .. "?category=eq.cat-"
    .. math.random(0, 99) .. "&order=score.desc&limit=20")
end
