rule { name = "x", key = "k",
  pattern = begin("a"),
  window = sliding("1h") }

