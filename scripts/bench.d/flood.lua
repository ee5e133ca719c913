-- One abusive client: anonymous GET /api/v1/bench_items/{id} as fast as the connections go,
-- all from one client address (X-Forwarded-For: $BENCH_FLOOD_IP, through a trusted proxy).
-- Refused requests (429) count as wrk "status" errors: here they are the expected answer.
dofile(os.getenv("BENCH_D") .. "/common.lua")

local ids = {}
local headers

function init(args)
  seed_random()
  ids = load_ids()
  headers = { ["X-Forwarded-For"] = os.getenv("BENCH_FLOOD_IP") or "203.0.113.7" }
end

function request()
  return get_random_record(ids, headers)
end
