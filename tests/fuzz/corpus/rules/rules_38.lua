local s = string.rep('a', 60000)
local i = s:find(string.rep('a', 20000) .. 'b', 1, true)

