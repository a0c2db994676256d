-- mirrors: to-be-closed variables run while the budget error unwinds the stack: the
-- __close runs after the kill and loops
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
local x <close> = setmetatable({}, { __close = function() while true do end end })
while true do end
