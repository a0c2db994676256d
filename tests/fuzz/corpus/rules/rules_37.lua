local s = string.rep('a', 5000)
local i = s:gsub('a-', '')

