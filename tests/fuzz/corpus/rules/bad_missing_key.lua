-- compile error: no `key` (rule{} on line 3)

rule {
  name = "missing_key",
  window = sliding("1h"),
  when = ge(count(), 4),
}
