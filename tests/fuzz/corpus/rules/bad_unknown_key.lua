-- compile error: an unknown key in rule{} (line 3: the rule{} call)

rule {
  name = "unknown_key",
  key = "card_id",
  pattern = begin("a"):where{ type = "auth" },
  windw = "10m",
}
