-- mirrors: a memory bomb by string doubling (the allocator's cap, not string.rep's check)
-- expect: refused
-- error: memory cap exceeded | wall-clock limit exceeded
local s = "x"
while true do s = s .. s end
