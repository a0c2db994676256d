-- mirrors: Redis's script timeout; an endless loop at load
-- expect: refused
-- error: instruction budget exceeded | wall-clock limit exceeded
while true do end
