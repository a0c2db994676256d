-- compile error: Lua function predicates are not supported yet (rule{} on line 2)
rule {
  name = "function_predicate",
  key = "card_id",
  pattern = begin("a"):where(function(e, m) return e.amount > 5 end),
}
