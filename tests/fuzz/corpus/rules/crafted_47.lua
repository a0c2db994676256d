local P = { __vigil = 'pattern' }
local X = { __vigil = 'expr' }
local W = { __vigil = 'window' }
rule { name = 'x', key = 'k', window = sliding('1h'), when = setmetatable({ _k = 'op', _op = 'gt', {}, {} }, X) }
