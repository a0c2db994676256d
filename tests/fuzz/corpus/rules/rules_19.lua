rule { name = "x", key = "k", window = sliding("1h"),
  when = not ge(count(), 1) }
