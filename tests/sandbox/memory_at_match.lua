-- mirrors: a memory bomb at match time, in the function predicate
-- expect: compiles
-- alerts: 0
local keep = {}
rule { name = "escape", key = "card", pattern = begin("a"):where(function(ev)
  while true do keep[#keep + 1] = ("x"):rep(1e5) .. #keep end
end) }
