-- POST /api/v1/auth/refresh. Every refresh spends its token and answers a new one, so each
-- thread keeps a pool of live tokens (its half of $BENCH_REFRESH_FILE): a request takes one,
-- its response puts the new one back. The pool is larger than a thread's connections, so it
-- never runs dry while responses succeed.
dofile(os.getenv("BENCH_D") .. "/common.lua")

local pool = {}

function init(args)
  local n = 0
  for line in io.lines(os.getenv("BENCH_REFRESH_FILE")) do
    n = n + 1
    if line ~= "" and n % 2 == (thread_no or 1) % 2 then pool[#pool + 1] = line end
  end
end

function request()
  local token = table.remove(pool) or "pool-exhausted"
  return wrk.format("POST", "/api/v1/auth/refresh", JSON_HEADERS, '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then pool[#pool + 1] = token end
end
