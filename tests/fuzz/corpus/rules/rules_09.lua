rule { name = "x", key = "k", severity = "urgent", pattern = begin("a") }
