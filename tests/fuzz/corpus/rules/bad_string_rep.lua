-- sandbox: a 1 GB string is stopped by the memory cap (line 2)
local s = string.rep("x", 1e9)
