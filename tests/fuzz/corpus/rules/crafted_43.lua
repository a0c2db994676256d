local P = getmetatable(begin('a'))
local X = getmetatable(e.a)
local W = getmetatable(sliding('1h'))
rule { name = 'x', key = 'k', pattern = setmetatable({ _steps = { { name = 'a', min = -3, max = 0/0 } } }, P) }
