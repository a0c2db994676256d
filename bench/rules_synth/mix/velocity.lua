-- Sliding 1 h windows: velocity, bursts, spend, geography.
rule {
  name = "tx_velocity_1h", severity = "low", key = "user",
  where = { type = "tx" }, window = sliding("1h"),
  when = ge(count(), 8), suppress = "1h",
}
rule {
  name = "login_fail_burst_1h", severity = "medium", key = "user",
  where = { type = "login_fail" }, window = sliding("1h"),
  when = ge(count(), 4), suppress = "1h",
}
rule {
  name = "tx_sum_1h", severity = "medium", key = "user",
  where = { type = "tx" }, window = sliding("1h"),
  when = gt(sum("amount"), 2500), suppress = "1h",
}
rule {
  name = "country_hop_1h", severity = "high", key = "user",
  where = { type = one_of{ "login", "tx" } }, window = sliding("1h"),
  when = ge(distinct("country"), 3), suppress = "1h",
}
