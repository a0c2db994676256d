-- mirrors: CVE-2015-4335; string.dump reached through the string metatable ("":dump)
-- expect: refused
-- error: string.dump is not available
local dump = ("").dump
local bc = dump(function() return 1 end)
