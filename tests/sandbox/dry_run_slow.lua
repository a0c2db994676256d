-- mirrors: Redis's script timeout, summed over many calls: every call of the predicate stays
-- in its own budget (100 ms), but a dry run of 10,000 events would hold an HTTP thread for
-- 17 minutes; POST /v1/rules:test stops at its own 10 s and says so
-- expect: compiles
-- expect-test: refused
-- events: 160
-- error: the dry run stopped after
local s = ("x"):rep(60000)
rule { name = "escape", key = "card", pattern = begin("a"):where(function(ev)
  while true do local u = s:upper() end      -- C work per instruction: the 100 ms ends each call
end) }
