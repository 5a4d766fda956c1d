-- wrk script: GET <path> with the bearer tokens of a file (one per line), in turn.
-- Usage: wrk -t1 -c32 -d3s -s bench/gateway/tokens.lua http://host:port -- tokens.txt /v1/auth [start [count]]
-- start: the index to begin at (where the previous run against the same server stopped).
-- count: how many tokens from there to hold (default: the whole file, from start round to the
-- beginning). A run that needs fewer than a large file holds only its own slice: wrk's Lua heap,
-- and the time its collector spends on it, stays small whatever the file's size.
local tokens = {}
local path = "/"
local i = 0

init = function(args)
  local all = {}
  for line in io.lines(args[1]) do
    all[#all + 1] = line
  end
  if args[2] then path = args[2] end
  local start = args[3] and (tonumber(args[3]) % #all) or 0
  local count = args[4] and math.min(tonumber(args[4]), #all) or #all
  for k = 0, count - 1 do
    tokens[#tokens + 1] = "Bearer " .. all[(start + k) % #all + 1]
  end
  all = nil
  collectgarbage()
end

request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", path, { ["Authorization"] = tokens[i] })
end
