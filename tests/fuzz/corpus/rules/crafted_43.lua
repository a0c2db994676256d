local P = { __vigil = 'pattern' }
local X = { __vigil = 'expr' }
local W = { __vigil = 'window' }
rule { name = 'x', key = 'k', pattern = setmetatable({ _steps = { { name = 'a', min = -3, max = 0/0 } } }, P) }
