local x = e.a
for i = 1, 30 do x = x + x end
rule { name = 'x', key = 'k', window = sliding('1h'), when = gt(x, 1) }
