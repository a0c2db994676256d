-- mirrors: string.rep with a large separator (the size is count x (len + sep))
-- expect: refused
-- error: memory cap exceeded
local s = ("x"):rep(1e6, ("y"):rep(1e4))
