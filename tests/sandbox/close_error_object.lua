-- mirrors: a __close that raises an error object whose __tostring loops
-- expect: refused
-- error: error() was called with a table
local bad = setmetatable({}, { __tostring = function() while true do end end })
do
  local x <close> = setmetatable({}, { __close = function() error(bad) end })
end
