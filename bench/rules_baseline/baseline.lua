-- The three rules of the Python baseline (bench/baseline.py), keyed by customer.
rule { name = "over_220", key = "customer_id", where = { tx_amount = gt(220) },
       window = sliding("1h"), when = ge(count(), 1) }
rule { name = "four_in_1h", key = "customer_id", window = sliding("1h"), when = ge(count(), 4) }
rule { name = "small_then_big", key = "customer_id", within = "1h", skip = "skip_past_last_event",
       pattern = begin("small"):where{ tx_amount = lt(20) }:followed_by("big"):where{ tx_amount = gt(150) } }
