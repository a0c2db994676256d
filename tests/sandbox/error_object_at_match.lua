-- mirrors: CVE-2022-24736 at match time: the predicate raises a table whose __tostring loops
-- expect: compiles
-- alerts: 0
local bad = setmetatable({}, { __tostring = function() while true do end end })
rule { name = "escape", key = "card", pattern = begin("a"):where(function(ev) error(bad) end) }
