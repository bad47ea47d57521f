-- POST add-post with a text of args[2] bytes (ASCII, so bytes = characters).
function init(args)
  local headers = base_headers(args)
  headers["Content-Type"] = "application/json"
  wrk.headers = headers
  wrk.method = "POST"
  wrk.body = '{"text": "' .. string.rep("a", tonumber(args[2])) .. '"}'
end
