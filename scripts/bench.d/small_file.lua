-- GET /api/v1/storage/{id}: one small public file ($BENCH_FILE_ID), anonymously.
dofile(os.getenv("BENCH_D") .. "/common.lua")

local path = "/api/v1/storage/" .. (os.getenv("BENCH_FILE_ID") or error("BENCH_FILE_ID is not set"))

function request()
  return wrk.format("GET", path)
end
