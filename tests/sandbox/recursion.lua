-- mirrors: CVE-2021-32626 (Lua stack overflow, lua_checkstack); unbounded recursion caught
-- by pcall over and over
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
local function f(n) return f(n + 1) + 1 end
while true do pcall(f, 1) end
