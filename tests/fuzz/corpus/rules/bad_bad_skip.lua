-- compile error: an unknown skip strategy (rule{} on line 2)
rule {
  name = "bad_skip",
  key = "card_id",
  pattern = begin("a"):followed_by("b"),
  skip = "skip_everything",
}
