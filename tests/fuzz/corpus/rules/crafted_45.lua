local P = { __vigil = 'pattern' }
local X = { __vigil = 'expr' }
local W = { __vigil = 'window' }
rule { name = 'x', key = 'k', window = setmetatable({ _ms = 1/0 }, W), when = ge(count(), 1) }
