-- mirrors: a memory bomb by tables, behind pcall (a memory error cannot be caught)
-- expect: refused
-- error: memory cap exceeded
local t = {}
while true do
  pcall(function() for i = 1, 1e6 do t[#t + 1] = { i, i, i, i } end end)
end
