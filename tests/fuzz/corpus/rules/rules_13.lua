rule { name = "x", key = "k", pattern = begin("a"):greedy() }
