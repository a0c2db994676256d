-- mirrors: CVE-2025-46819 (out-of-bounds read on an unterminated long bracket)
-- expect: refused
-- error: unfinished long string
local s = [==[ never closed ]=] ]] ]===]
