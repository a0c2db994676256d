-- mirrors: CRLF injection through a field name in where{}
-- expect: refused
-- error: control character
rule { name = "escape", key = "card", pattern = begin("a"):where{ ["type\r\nINJECTED"] = "tx" } }
