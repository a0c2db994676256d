local P = { __vigil = 'pattern' }
local X = { __vigil = 'expr' }
local W = { __vigil = 'window' }
rule { name = 'x', key = 'k', window = sliding('1h'), when = setmetatable({ _k = 'agg', _agg = 'sum', _path = 'a', _filter = 5 }, X) }
