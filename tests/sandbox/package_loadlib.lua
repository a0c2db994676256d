-- mirrors: sandbox basics; package.loadlib opens a shared object
-- expect: refused
-- error: undefined global 'package'
local f = package.loadlib("/lib/x86_64-linux-gnu/libc.so.6", "system")
