local P = getmetatable(begin('a'))
local X = getmetatable(e.a)
local W = getmetatable(sliding('1h'))
rule { name = 'x', key = 'k', window = sliding('1h'), when = setmetatable({ _k = 'op', _op = 'gt', {}, {} }, X) }
