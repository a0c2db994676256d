-- mirrors: Redis's script timeout vs C functions: table.sort runs in C, out of the count
-- hook's reach, and a loop of sorts passes 1000 VM instructions only every ~200 sorts, so a
-- wall clock checked per count let a 2 s limit run 30 s; it is checked before every call
-- expect: refused
-- error: wall-clock limit exceeded
local t = {}
for i = 1, 3e5 do t[i] = (i * 7919) % 300007 end
while true do table.sort(t) end
