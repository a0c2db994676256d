-- compile error: a Lua comparison in where{} reads an undefined global; the
-- message says how to write the condition (docs/rules.md §12) (line 6)
rule {
  name = "where_comparison",
  key = "card_id",
  pattern = begin("a"):where{ amount > 5 },
}
