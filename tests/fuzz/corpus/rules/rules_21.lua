rule { name = "x", key = "k", window = sliding("1h"), when = count() + 1 }
