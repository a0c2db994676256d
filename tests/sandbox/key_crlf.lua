-- mirrors: CRLF injection through the key field (NATS subject vigil.late.<key field>, logs)
-- expect: refused
-- error: control character
rule { name = "escape", key = "card\r\nPUB vigil.alerts.good 2\r\nhi\r\nINJECTED", pattern = begin("a") }
