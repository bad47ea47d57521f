-- DELETE one distinct post per request: the ids of file args[2], dealt out round-robin to args[3] threads.
local ids = {}
local next_id = 1

function init(args)
  wrk.headers = base_headers(args)
  local threads = tonumber(args[3])
  local line_number = 0
  for line in io.lines(args[2]) do
    if line_number % threads == thread_index then
      table.insert(ids, line)
    end
    line_number = line_number + 1
  end
end

function request()
  -- Past the last id the request repeats one, gets 404 and shows up as an error: never hidden.
  local id = ids[next_id] or ids[#ids]
  next_id = next_id + 1
  return wrk.format("DELETE", wrk.path .. "?post_id=" .. id)
end
