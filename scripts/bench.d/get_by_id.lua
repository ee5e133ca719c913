-- GET /api/v1/bench_items/{id} for a random seeded id (ids file: $BENCH_IDS_FILE).
dofile(os.getenv("BENCH_D") .. "/common.lua")

local ids = {}

-- init() runs in each thread's state only, so the main state does not load the ids too.
function init(args)
  seed_random()
  local file = os.getenv("BENCH_IDS_FILE") or error("BENCH_IDS_FILE is not set")
  for line in io.lines(file) do
    if line ~= "" then ids[#ids + 1] = line end
  end
  if #ids == 0 then error("no ids in " .. file) end
end

function request()
  return wrk.format("GET", "/api/v1/" .. COLLECTION .. "/" .. ids[math.random(#ids)])
end
