-- mirrors: Redis's script timeout at match time: the predicate never returns (each call
-- has its own budget: 1,000,000 instructions, 100 ms)
-- expect: compiles
-- alerts: 0
rule { name = "escape", key = "card", pattern = begin("a"):where(function(ev)
  while true do end
end) }
