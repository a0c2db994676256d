-- mirrors: an xpcall message handler that loops (it runs where the error was raised)
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
xpcall(function() error("x") end, function() while true do end end)
