-- GET the URL (path and query) as a random one of the first args[2] accounts of token file args[1].
-- Each thread draws from its own fixed seed, so every server sees the same accounts in the same order.
local tokens = {}
local headers = {}

function init(args)
  tokens = load_tokens(args[1], tonumber(args[2]))
  math.randomseed(1 + thread_index)
end

function request()
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format("GET", nil, headers)
end
