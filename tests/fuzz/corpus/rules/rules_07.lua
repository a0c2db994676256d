rule { name = "x", key = "k", window = sliding("1h"), when = gt(5) }
