local parts = {}
for i, v in ipairs{ 'a', 'b' } do parts[#parts + 1] = string.format('%s%d', v, i) end
assert(table.concat(parts, ',') == 'a1,b2')
assert(math.floor(2.5) == 2 and utf8.char(72) == 'H' and select('#', 1, 2) == 2)
assert(pcall(error, 'x') == false and tostring(1) == '1' and type(_G) == 'table')
assert(rawget(_G, 'nope') == nil and _VERSION)
local ok, err = pcall(function() return undefined_name end)
assert(not ok and err:find("undefined global 'undefined_name'"))
rule { name = 'x' .. parts[1], key = 'k', window = sliding('1h'), when = ge(count(), 1) }

