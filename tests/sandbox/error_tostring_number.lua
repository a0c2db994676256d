-- mirrors: CVE-2022-24736; an error object whose __tostring returns a non-string, and
-- __index/__len that raise
-- expect: refused
-- error: error() was called with a table
error(setmetatable({}, { __tostring = function() return 42 end,
                         __index = function() error("no") end, __len = function() error("no") end }))
