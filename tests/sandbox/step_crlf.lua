-- mirrors: CRLF injection through a step name (explain, errors)
-- expect: refused
-- error: is invalid
rule { name = "escape", key = "card", pattern = begin("a\r\nINJECTED: 1") }
