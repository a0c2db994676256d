-- Sliding 30 d windows: each user's own history.
rule {
  name = "amount_spike_30d", severity = "medium", key = "user",
  where = { type = "tx" }, window = sliding("30d"),
  when = all_of{ ge(prior(count()), 4), gt(e.amount, 6 * prior(avg("amount"))) },
}
rule {
  name = "new_device_30d", severity = "low", key = "user",
  where = { type = "login" }, window = sliding("30d"),
  when = all_of{ is_new("device"), ge(prior(count()), 2) },
}
rule {   -- reacts to transactions, counts password resets
  name = "reset_then_spend_30d", severity = "high", key = "user",
  window = sliding("30d"),
  when = all_of{ eq(e.type, "tx"), gt(e.amount, 500), ge(count{ type = "reset" }, 2) },
}
