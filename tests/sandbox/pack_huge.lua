-- mirrors: CVE-2018-11218 / CVE-2020-14147 (cmsgpack/struct: a size from the script
-- drives an allocation); string.pack("c<huge>") asks for an enormous buffer
-- expect: refused
-- error: memory cap exceeded
local s = string.pack("c" .. math.maxinteger, "")
