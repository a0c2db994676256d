-- mirrors: catastrophic backtracking; one repetition over a long subject
-- expect: refused
-- error: at most 4096 bytes
local s = ("a"):rep(1e6)
local i = s:match("(.-)b")
