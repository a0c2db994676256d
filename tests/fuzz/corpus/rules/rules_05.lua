rule { key = "k", window = sliding("1h"), when = ge(count(), 1) }
