-- mirrors: sandbox basics (Redis removes io); write the canary file
-- expect: refused
-- error: undefined global 'io'
local f = io.open("/tmp/vigil-escape-canary", "w")
f:write("escaped")
f:close()
