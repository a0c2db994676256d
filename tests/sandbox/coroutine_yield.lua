-- mirrors: coroutines that yield across pcall, and coroutine loops: coroutine is absent
-- expect: refused
-- error: undefined global 'coroutine'
local co = coroutine.wrap(function() while true do pcall(coroutine.yield) end end)
while true do co() end
