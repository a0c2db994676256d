-- mirrors: CVE-2025-46818; setmetatable on a string (a basic type)
-- expect: refused
-- error: table expected
setmetatable("", { __index = function() return "pwned" end })
