-- mirrors: heavy C calls in a loop at match time, where a call has 100 ms
-- expect: compiles
-- alerts: 0
local t = {}
for i = 1, 2e5 do t[i] = (i * 7919) % 200003 end
rule { name = "escape", key = "card", pattern = begin("a"):where(function(ev)
  while true do table.sort(t) end
end) }
