rule { name = "x", key = "k", mode = "dry", pattern = begin("a") }
