-- wrk: alternate a cheap 200 (/healthz) and a 404 path.
local n = 0
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("GET", "/no/such/page")
end
