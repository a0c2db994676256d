-- mirrors: CVE-2024-46981 / CVE-2025-49844 (the GC runs script code where the limits do not
-- hold) and CVE-2025-46818 (a shared metatable changed by a script): put a __gc on the DSL's
-- own metatable, so that every condition the prelude makes later is finalized by Lua with
-- hooks off (no budget) and at lua_close after the run
-- expect: refused
-- error: index a boolean
local mt = getmetatable(gt(1))
mt.__gc = function() while true do end end
local more = gt(2)
rule { name = "escape", key = "card", pattern = begin("a"):where{ amount = gt(1) } }
