-- mirrors: a gsub callback that loops (Lua code called from C, still counted)
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
local s = ("a"):rep(100)
s:gsub("a", function() while true do end end)
