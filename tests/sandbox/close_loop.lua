-- mirrors: Lua 5.4 to-be-closed variables: a __close that loops forever
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
do
  local x <close> = setmetatable({}, { __close = function() while true do end end })
end
