-- GET /api/v1/bench_items/{id} with a user's access token: get_by_id plus the per-request
-- session check.
dofile(os.getenv("BENCH_D") .. "/common.lua")

local ids = {}
local headers

function init(args)
  seed_random()
  ids = load_ids()
  headers = { ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN") }
end

function request()
  return get_random_record(ids, headers)
end
