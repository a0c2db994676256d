-- compile error: `when` is a plain boolean (Lua's == on an expression and a
-- number gives false), reported at the rule{} call on line 4

rule {
  name = "boolean_when",
  key = "customer_id",
  window = sliding("1h"),
  when = count() == 4,
}
