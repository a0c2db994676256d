rule { name = "x", key = "k", pattern = begin("a"):where{ d = in_list("no_such_list") } }
