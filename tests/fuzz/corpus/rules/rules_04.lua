rule { name = "Bad-Name", key = "k", window = sliding("1h"), when = ge(count(), 1) }
