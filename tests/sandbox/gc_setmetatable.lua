-- mirrors: CVE-2024-46981 (Lua GC use-after-free through a finalizer); __gc that loops
-- forever, run by the GC or at lua_close outside every budget
-- expect: refused
-- error: __gc metamethods are not allowed
local t = setmetatable({}, { __gc = function() while true do end end })
