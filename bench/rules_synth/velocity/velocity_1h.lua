-- Memory per idle key (issue 3, item 4): one sliding 1 h count.
rule {
  name = "velocity_1h", severity = "low", key = "user",
  where = { type = "tx" }, window = sliding("1h"),
  when = ge(count(), 10), suppress = "1h",
}
