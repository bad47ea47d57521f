-- POST /sign_up with a new email per request: run nonce args[3], password args[4].
local counter = 0
local prefix = ""
local password = ""
local headers = {}

function init(args)
  headers = base_headers(args)
  headers["Content-Type"] = "application/json"
  prefix = "su-" .. args[3] .. "-" .. thread_index .. "-"
  password = args[4]
end

function request()
  counter = counter + 1
  local body = '{"email_address": "' .. prefix .. counter .. '@bench.example.com", "password": "' .. password .. '"}'
  return wrk.format("POST", nil, headers, body)
end
