-- mirrors: _ENV tricks: replace or extend _ENV, read removed names through _G, rawget on
-- the protected views; all of it stays inside this chunk
-- expect: compiles
-- alerts: 4
assert(rawget(_G, "io") == nil and rawget(_G, "load") == nil and rawget(string, "dump") == nil)
assert(rawequal(string, _G.string) and not rawequal(string, getmetatable("")))
assert(pcall(function() return _ENV.os end) == false)
local saved = _ENV
do
  local _ENV = setmetatable({}, { __index = saved })
  x_global = 1
end
_ENV.rule = rule
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" } }
