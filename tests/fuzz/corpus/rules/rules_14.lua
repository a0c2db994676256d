rule { name = "x", key = "k",
 pattern = begin("a"):times(2):times(3) }
