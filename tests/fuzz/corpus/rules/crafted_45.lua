local P = getmetatable(begin('a'))
local X = getmetatable(e.a)
local W = getmetatable(sliding('1h'))
rule { name = 'x', key = 'k', window = setmetatable({ _ms = 1/0 }, W), when = ge(count(), 1) }
