-- mirrors: CVE-2025-46818 / CVE-2022-24735 (a script changes the string metatable that
-- trusted code shares); getmetatable("").__index = f
-- expect: refused
-- error: read-only
getmetatable("").__index = function(s, k) return function() return "pwned" end end
