-- mirrors: a memory bomb outside the Lua heap: each alert's details are copied to the hub,
-- SSE, webhooks, NATS and the dry run's answer, where the state's memory cap does not count
-- them (30 MB each made a 90 MB dry-run answer of 3 alerts, the server at 1.3 GB; this one
-- makes 3 MB, still far over); details are capped at 64 KiB of JSON, over it the alert
-- keeps its built-in details
-- expect: compiles
-- alerts: 4
local big = ("x"):rep(3e6)
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" },
  alert = function(m) return { x = big } end }
