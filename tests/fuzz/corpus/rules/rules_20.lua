rule { name = "x", key = "k", window = sliding("1h"), when = all_of{ ge(count(), 1), true } }
