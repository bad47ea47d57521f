-- A client's cycle as a random one of the first args[2] accounts of token file args[1], drawn anew each
-- cycle: add-post, get_my_posts, then delete_my_post of the post just added. One connection per thread
-- (wrk -t = -c, so a thread's state is its connection's); the URL's path is /api/v1/posts/.
local tokens = {}
local step = 0
local post_id = nil
local answered = true
local headers = {}
local json_headers = {["Content-Type"] = "application/json"}

function init(args)
  tokens = load_tokens(args[1], tonumber(args[2]))
  math.randomseed(1 + thread_index)
end

function request()
  -- No answer to the last request (a socket error or timeout, counted as such; wrk then asks for
  -- another): start a new cycle rather than repeat a delete that may have been done.
  if not answered then
    step = 0
  end
  answered = false
  if step == 0 then
    local authorization = "Bearer " .. tokens[math.random(#tokens)]
    headers["Authorization"] = authorization
    json_headers["Authorization"] = authorization
    return wrk.format("POST", wrk.path .. "add-post", json_headers, '{"text": "a post of a client cycle"}')
  elseif step == 1 then
    return wrk.format("GET", wrk.path .. "get_my_posts", headers)
  end
  return wrk.format("DELETE", wrk.path .. "delete_my_post?post_id=" .. post_id, headers)
end

function response(status, response_headers, body)
  answered = true
  if step == 0 then
    post_id = string.match(body, '"id"%s*:%s*"([%x%-]+)"')
    -- No id (a failed add, counted as an error): add again, as another account, rather than delete nothing.
    step = post_id and 1 or 0
  else
    step = (step + 1) % 3
  end
end
