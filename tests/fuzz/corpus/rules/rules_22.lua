rule { name = "x", key = "k", pattern = begin("a"):where{ e = matches("(?<=a)b") } }
