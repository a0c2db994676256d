-- mirrors: catastrophic backtracking in Lua patterns (runs in C, out of the hook's reach)
-- expect: refused
-- error: at most one repetition
local s = ("a"):rep(4000)
local i = string.find(s, ".-.-.-.-b")
