-- mirrors: CVE-2025-46817; table.unpack from math.mininteger to math.maxinteger (n wraps)
-- expect: refused
-- error: too many results to unpack
local t = { table.unpack({}, math.mininteger, math.maxinteger) }
