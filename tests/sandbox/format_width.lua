-- mirrors: CVE-2020-14147 / CVE-2018-11218 (struct/cmsgpack size arithmetic); a format
-- width of 99999
-- expect: refused
-- error: invalid conversion
local s = string.format("%99999d", 1)
