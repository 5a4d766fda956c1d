-- wrk script: GET <path> with the bearer tokens of a file (one per line), in turn.
-- Usage: wrk -t1 -c32 -d3s -s bench/gateway/tokens.lua http://host:port -- tokens.txt /v1/auth
local tokens = {}
local path = "/"
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  if args[2] then path = args[2] end
end

request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", path, { ["Authorization"] = tokens[i] })
end
