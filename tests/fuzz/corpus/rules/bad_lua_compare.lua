-- compile error: a Lua comparison operator on an expression (line 6)
rule {
  name = "lua_compare",
  key = "customer_id",
  window = sliding("1h"),
  when = count() < 4,
}
