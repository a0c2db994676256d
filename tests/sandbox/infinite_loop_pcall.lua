-- mirrors: Redis's script timeout; the budget error caught by pcall to loop on
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
while true do
  pcall(function() while true do end end)
end
