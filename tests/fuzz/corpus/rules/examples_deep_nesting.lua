local v = 1
for i = 1, 31 do v = { a = v } end
local function f(n)
  if n == 0 then
    rule { name = "deep", key = "k", window = sliding("1h"), when = ge(count(), 1),
      examples = { { events = { { ts = 0, k = 1, deep = v } }, alerts = 0 } } }
  else
    f(n - 1)
  end
end
f(4)
