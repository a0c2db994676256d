-- mirrors: CVE-2022-24735 (overwriting a shared library function); string.rep = f
-- expect: refused
-- error: read-only
string.rep = function() return "pwned" end
