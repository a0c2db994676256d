-- sandbox: a table that grows without end is stopped by the memory cap (line 4)
local t = {}
for i = 1, 1e9 do
  t[i] = { i, i, i, i, i, i, i, i }
end
