-- mirrors: CVE-2022-24736; an error object whose __tostring raises again
-- expect: refused
-- error: error() was called with a table
error(setmetatable({}, { __tostring = function() error("again") end }))
