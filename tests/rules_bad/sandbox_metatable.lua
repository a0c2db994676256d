-- sandbox: the string metatable is read-only, as in Redis since CVE-2025-46818 (line 2)
getmetatable("").__index = function(s, k) return function() return "pwned" end end
