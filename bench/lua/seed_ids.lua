-- POST add-post and write each answered post id to file args[2] .. thread_index (ids for delete.lua).
local ids_file = nil

function init(args)
  local headers = base_headers(args)
  headers["Content-Type"] = "application/json"
  wrk.headers = headers
  wrk.method = "POST"
  wrk.body = '{"text": "a post to delete"}'
  ids_file = io.open(args[2] .. thread_index, "w")
  ids_file:setvbuf("line")
end

function response(status, headers, body)
  local id = string.match(body, '"id"%s*:%s*"([%x%-]+)"')
  if status == 200 and id then
    ids_file:write(id, "\n")
  end
end
