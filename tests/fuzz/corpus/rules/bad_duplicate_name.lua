-- compile error: the second rule reuses the first one's name (line 8)
rule {
  name = "dup",
  key = "card_id",
  window = sliding("1h"),
  when = ge(count(), 4),
}
rule {
  name = "dup",
  key = "card_id",
  window = sliding("2h"),
  when = ge(count(), 8),
}
