local x = e.a
for i = 1, 300 do x = x + 1 end
rule { name = "x", key = "k", window = sliding("1h"), when = gt(x, 1) }
