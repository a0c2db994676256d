local P = getmetatable(begin('a'))
local X = getmetatable(e.a)
local W = getmetatable(sliding('1h'))
rule { name = 'x', key = 'k', window = sliding('1h'), when = setmetatable({ _k = 'agg', _agg = 'sum', _path = 'a', _filter = 5 }, X) }
