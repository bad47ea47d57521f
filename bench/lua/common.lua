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

-- The first `count` lines of file `path` (access tokens, one per account), as a table.
function load_tokens(path, count)
  local tokens = {}
  for line in io.lines(path) do
    if #tokens == count then
      break
    end
    table.insert(tokens, line)
  end
  if #tokens < count then
    error(path .. " holds " .. #tokens .. " tokens, not " .. count)
  end
  return tokens
end
