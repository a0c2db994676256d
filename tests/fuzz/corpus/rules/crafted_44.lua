local P = { __vigil = 'pattern' }
local X = { __vigil = 'expr' }
local W = { __vigil = 'window' }
rule { name = 'x', key = 'k', pattern = setmetatable({ _steps = 5 }, P) }
