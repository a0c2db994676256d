-- sandbox: load is not available, so no way to run a binary chunk (line 2)
local f = load("\27Lua")
