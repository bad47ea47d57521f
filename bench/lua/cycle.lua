-- A client's cycle, one connection per thread (wrk -t = -c, so a thread's state is its connection's):
-- add-post, get_my_posts, then delete_my_post of the post just added. The URL's path is /api/v1/posts/.
local step = 0
local post_id = nil
local json_headers = {}
local headers = {}

function init(args)
  headers = base_headers(args)
  json_headers = base_headers(args)
  json_headers["Content-Type"] = "application/json"
end

function request()
  if step == 0 then
    return wrk.format("POST", wrk.path .. "add-post", json_headers, '{"text": "a post of a client cycle"}')
  elseif step == 1 then
    return wrk.format("GET", wrk.path .. "get_my_posts", headers)
  end
  return wrk.format("DELETE", wrk.path .. "delete_my_post?post_id=" .. post_id, headers)
end

function response(status, response_headers, body)
  if step == 0 then
    post_id = string.match(body, '"id"%s*:%s*"([%x%-]+)"')
    -- No id (a failed add, counted as an error): add again rather than delete nothing.
    step = post_id and 1 or 0
  else
    step = (step + 1) % 3
  end
end
