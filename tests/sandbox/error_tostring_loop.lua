-- mirrors: CVE-2022-24736 (Redis crashes turning a script's reply or error into text); an
-- error object whose __tostring loops forever
-- expect: refused
-- error: error() was called with a table
error(setmetatable({}, { __tostring = function() while true do end end }))
