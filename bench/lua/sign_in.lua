-- POST /sign_in as an OAuth2 password-flow form: email args[3], password args[4].
function init(args)
  local headers = base_headers(args)
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers = headers
  wrk.method = "POST"
  wrk.body = "username=" .. args[3] .. "&password=" .. args[4]
end
