-- mirrors: a memory bomb through the dry run's answer: one alert per event over 10,000
-- events, each with up to 64 KiB of details, would make a 640 MB answer; the answer lists
-- the first 1,000 alerts and counts the rest (alerts_total, alerts_truncated)
-- expect: compiles
-- events: 1100
-- alerts: 1000
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" },
  alert = function(m) return { n = #m.events } end }
