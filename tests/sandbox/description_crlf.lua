-- mirrors: CRLF in a rule's description: allowed text; it is only emitted as JSON (escaped)
-- expect: compiles
-- alerts: 4
rule { name = "escape", key = "card", description = "two\r\nINJECTED: lines\n",
       pattern = begin("a"):where{ type = "tx" } }
