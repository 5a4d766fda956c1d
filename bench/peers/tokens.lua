-- wrk script: GET /v1/whoami with the bearer tokens of a file (one per line), in turn.
-- Usage: wrk -t1 -c32 -d3s -s bench/peers/tokens.lua http://host:port -- tokens.txt
local tokens = {}
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
end

request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/v1/whoami", { ["Authorization"] = tokens[i] })
end
