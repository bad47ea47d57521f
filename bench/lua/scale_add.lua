-- POST add-post with a text of args[3] bytes as a random one of the first args[2] accounts of token file args[1].
local tokens = {}
local headers = {["Content-Type"] = "application/json"}
local body = ""

function init(args)
  tokens = load_tokens(args[1], tonumber(args[2]))
  body = '{"text": "' .. string.rep("a", tonumber(args[3])) .. '"}'
  math.randomseed(1 + thread_index)
end

function request()
  headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]
  return wrk.format("POST", nil, headers, body)
end
