-- mirrors: CVE-2025-46817 (unpack integer overflow); table.unpack over a huge range
-- expect: refused
-- error: too many results to unpack
local t = { table.unpack({}, 1, 1e8) }
