-- Shared set-up: numbered threads, the bearer token (args[1]) and the fresh-connection switch (args[2]).
local thread_count = 0
function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function base_headers(args)
  local headers = {}
  if args[1] ~= nil and args[1] ~= "-" then
    headers["Authorization"] = "Bearer " .. args[1]
  end
  if args[2] == "close" then
    headers["Connection"] = "close"
  end
  return headers
end
