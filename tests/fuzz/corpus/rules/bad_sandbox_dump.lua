-- sandbox: string.dump is removed (line 2)
local bytecode = string.dump(function() return 1 end)
