-- GET /api/v1/bench_items/{id} for a random seeded id (ids file: $BENCH_IDS_FILE).
dofile(os.getenv("BENCH_D") .. "/common.lua")

local ids = {}

function init(args)
  seed_random()
  ids = load_ids()
end

function request()
  return get_random_record(ids)
end
