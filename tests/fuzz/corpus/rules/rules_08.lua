

rule { name = "x", key = "k", window = sliding("1hour"), when = ge(count(), 1) }
