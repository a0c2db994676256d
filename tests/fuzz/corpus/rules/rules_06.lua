rule { name = "x", key = "k", window = sliding("1h") }
