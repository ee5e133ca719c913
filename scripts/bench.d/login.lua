-- POST /api/v1/auth/login with the bench user's password: bound by Argon2id by design.
dofile(os.getenv("BENCH_D") .. "/common.lua")

local body

function init(args)
  body = string.format('{"email":"%s","password":"%s"}', os.getenv("BENCH_EMAIL"), os.getenv("BENCH_PASSWORD"))
end

function request()
  return wrk.format("POST", "/api/v1/auth/login", JSON_HEADERS, body)
end
