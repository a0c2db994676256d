local p = begin("a"):where{ type = "x" }
rule { name = "r1", key = "k", pattern = p:next("b"):times(2) }
rule { name = "r2", key = "k", pattern = p:followed_by("c") }
rule { name = "r3", key = "k", pattern = p:times(3) }

