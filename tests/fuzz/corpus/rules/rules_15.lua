rule { name = "x", key = "k", pattern = begin("a"):within("1m") }
