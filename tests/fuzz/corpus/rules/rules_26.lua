local x = e.a % 2

