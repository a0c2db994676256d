-- mirrors: the same with a plain string.find over 1 MB (a billion byte compares at most)
-- expect: refused
-- error: wall-clock limit exceeded
local s = ("a"):rep(1e6)
local pat = ("a"):rep(999) .. "b"
local find = s.find
while true do find(s, pat, 1, true) find(s, pat, 1, true) find(s, pat, 1, true) end
