-- compile error: reading an undefined global (a typo of gt) on line 5
rule {
  name = "undefined_global",
  key = "card_id",
  pattern = begin("a"):where{ amount = gtt(500) },
}
