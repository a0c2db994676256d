-- mirrors: CVE-2024-46981; a __gc added to a metatable after setmetatable: Lua 5.4 marks an
-- object for finalization only when its metatable has __gc at setmetatable time, so this
-- finalizer never runs (not during the run, not at lua_close)
-- expect: compiles
-- alerts: 4
local mt = {}
local keep = {}
for i = 1, 100 do keep[i] = setmetatable({}, mt) end
mt.__gc = function() while true do end end
keep = nil
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" } }
