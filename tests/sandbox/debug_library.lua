-- mirrors: CVE-2025-46818 (debug.setmetatable on basic types); debug is absent
-- expect: refused
-- error: undefined global 'debug'
debug.setmetatable(1, { __index = function() return "pwned" end })
