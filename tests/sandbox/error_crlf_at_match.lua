-- mirrors: log injection at match time: the predicate's error is logged by the server
-- expect: compiles
-- alerts: 0
rule { name = "escape", key = "card", pattern = begin("a"):where(function(ev)
  error("boom\r\nINJECTED: vigil: a fake log line\n")
end) }
