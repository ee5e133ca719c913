-- POST /api/v1/bench_items/bulk with 500 new records per request (one transaction each).
dofile(os.getenv("BENCH_D") .. "/common.lua")

local body

function init(args)
  seed_random()
  local records = {}
  for i = 1, 500 do
    records[i] = string.format('{"title":"bulk item %d","category":"cat-%d","score":%d,"active":%s}',
      i, math.random(0, 99), math.random(0, 9999), (i % 2 == 0) and "true" or "false")
  end
  body = "[" .. table.concat(records, ",") .. "]"
end

function request()
  return wrk.format("POST", "/api/v1/" .. COLLECTION .. "/bulk", JSON_HEADERS, body)
end
