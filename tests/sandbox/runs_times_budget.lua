-- mirrors: Redis's script timeout multiplied by the engine: every partial match (up to
-- max_runs = 64 per key) calls the predicate of the step it waits on, each call with its
-- own 100 ms, so one event could cost 64 x 100 ms of a worker that other rules share; a
-- file's predicates get 250 ms per event in all (24 events: 6 s at most, where the
-- unshared budgets took 28 s and the dry run stopped at its 10 s)
-- expect: compiles
-- events: 24
-- alerts: 0
local s = ("x"):rep(60000)
rule { name = "escape", key = "card", skip = "no_skip",
  pattern = begin("a"):where{ type = "tx" }
            :followed_by_any("b"):where(function(ev)
              while true do local u = s:upper() end
            end) }
