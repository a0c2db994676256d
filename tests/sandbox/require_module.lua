-- mirrors: sandbox basics; require/package.loadlib load native code
-- expect: refused
-- error: undefined global 'require'
local m = require("io")
