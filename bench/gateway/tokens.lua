-- wrk script: GET <path> with the bearer tokens of a file (one per line), in turn.
-- Usage: wrk -t1 -c32 -d3s -s bench/gateway/tokens.lua http://host:port -- tokens.txt /v1/auth [start]
-- start: the index to begin at (where the previous run against the same server stopped).
local tokens = {}
local path = "/"
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = "Bearer " .. line
  end
  if args[2] then path = args[2] end
  if args[3] then i = tonumber(args[3]) % #tokens end
end

request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", path, { ["Authorization"] = tokens[i] })
end
