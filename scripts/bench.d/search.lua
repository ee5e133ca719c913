-- GET a page of 20 records whose title holds two random words, best match first (full-text
-- search ranked over every match, with the total count of matches).
dofile(os.getenv("BENCH_D") .. "/common.lua")

local WORDS = { "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
  "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra",
  "tango", "uniform", "victor", "whiskey" }

function init(args)
  seed_random()
end

function request()
  local a = WORDS[math.random(#WORDS)]
  local b = WORDS[math.random(#WORDS)]
  return wrk.format("GET", "/api/v1/" .. COLLECTION .. "?search=" .. a .. "%20" .. b .. "&limit=20")
end
