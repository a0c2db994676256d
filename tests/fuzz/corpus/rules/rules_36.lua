local s = string.rep('a', 3000)
local i = s:find('.-.-.-.-b')

