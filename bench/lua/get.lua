-- GET the URL's path with the token of args[1].
function init(args)
  wrk.headers = base_headers(args)
end
