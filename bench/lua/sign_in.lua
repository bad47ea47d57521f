-- POST sign_in as an OAuth2 password-flow form: email args[2], password args[3].
function init(args)
  local headers = base_headers(args)
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers = headers
  wrk.method = "POST"
  wrk.body = "username=" .. args[2] .. "&password=" .. args[3]
end
