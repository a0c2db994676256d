rule { name = "x", key = "k", pattern = begin("a"):where{ t = { 1, 2 } } }
