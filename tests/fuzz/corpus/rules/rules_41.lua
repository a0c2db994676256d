rule { name = "x", key = "k", pattern = begin("a"):where{ d = in_list("../etc/passwd") } }
