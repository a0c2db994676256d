local s = getmetatable('').__index
local d = rawget(s, 'dump')
assert(d == nil, 'dump reachable')
local y = nope
