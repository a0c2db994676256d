-- compile error: `within` is not a duration (rule{} on line 2)
rule {
  name = "bad_duration",
  key = "card_id",
  pattern = begin("a"):followed_by("b"),
  within = "10 minutes",
}
