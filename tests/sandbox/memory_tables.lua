-- mirrors: a memory bomb by tables, behind pcall (a memory error cannot be caught)
-- expect: refused
-- error: memory cap exceeded | wall-clock limit exceeded
local t = {}
while true do
  pcall(function() for i = 1, 1e6 do t[#t + 1] = { i, ("x"):rep(1048576) .. i } end end)
end
