-- mirrors: CVE-2021-32626 (stack growth without lua_checkstack); a tail call that passes
-- 1000 more values each time, up to a million on the stack
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
local t = {}
for i = 1, 1000 do t[i] = i end
local function grow(...) return grow(table.unpack(t), ...) end
grow()
