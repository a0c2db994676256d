-- mirrors: CVE-2024-46981; a finalizer made at match time, in the function predicate
-- expect: compiles
-- alerts: 0
rule { name = "escape", key = "card",
  pattern = begin("a"):where(function(ev)
    setmetatable({}, { __gc = function() while true do end end })
    return true
  end) }
