local x = e.a
for i = 1, 12 do x = x + x end
for i = 1, 1000 do
  rule { name = 'r' .. i, key = 'k', window = sliding('1h'), when = gt(x, 1) }
end
