-- mirrors: SSE injection: alert details with CR/LF and an SSE frame ("data:" lines are JSON)
-- expect: compiles
-- alerts: 4
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" },
  alert = function(m)
    return { note = "x\r\n\r\nevent: alert\ndata: {}\n\nINJECTED: 1", ["k\r\nINJECTED"] = 1 }
  end }
