rule { name = "x", key = "k", pattern = begin("a"):where{ gt(5) } }
