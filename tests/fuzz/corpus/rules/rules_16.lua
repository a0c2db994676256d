rule { name = "x", key = "k", pattern = begin("a"):where{ n = ref("zz", "n") } }
