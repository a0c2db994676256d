-- compile error: a missing comma (Lua syntax error on line 4)
rule {
  name = "syntax_error"
  key = "card_id",
}
