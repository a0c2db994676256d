-- mirrors: header/log injection (CRLF) through a rule name
-- expect: refused
-- error: is invalid
rule { name = "x\r\nSet-Cookie: a=1\r\nINJECTED: 1", key = "card", pattern = begin("a") }
