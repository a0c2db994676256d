rule { name = "bad_bin", key = "customer_id", severity = "critical",
  where = { type = "tx", ["card.bin"] = in_list("fuzz_bins"), email = matches("@(mailinator|guerrillamail)\\.com$", "i") },
  window = tumbling("1m"), when = all_of{ ge(count(), 1), in_list(e.device, "fuzz_bins"), none_of{ missing(e.k) } },
  examples = { { events = { { type = "tx", customer_id = 1, card = { bin = "4111" }, ts = 0 } }, alerts = 1 } } }
