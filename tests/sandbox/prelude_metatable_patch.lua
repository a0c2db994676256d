-- mirrors: CVE-2022-24735 (change what trusted code does through a shared metatable):
-- patch the event proxy `e` and the pattern methods
-- expect: refused
-- error: index a boolean
getmetatable(e).__index = function() return "pwned" end
getmetatable(begin("a")).__index = function() return function() return "pwned" end end
