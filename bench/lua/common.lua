-- Shared set-up: numbered threads and the bearer token of args[1] ("-" for none).
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
  return headers
end
