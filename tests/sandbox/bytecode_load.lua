-- mirrors: CVE-2015-4335; load() of a binary chunk (mode "b")
-- expect: refused
-- error: undefined global 'load'
local f = load(string.char(27) .. "Lua" .. string.char(84, 0), "x", "b")
