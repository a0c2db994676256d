-- compile error: a Lua function predicate is a whole step condition, not a field's (rule{} on line 2)
rule {
  name = "function_predicate",
  key = "card_id",
  pattern = begin("a"):where{ amount = function(v) return v > 5 end },
}
