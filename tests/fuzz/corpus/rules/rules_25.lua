local x = e.a
local y = x * 2
local z = count() <= y

