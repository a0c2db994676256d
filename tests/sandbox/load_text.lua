-- mirrors: CVE-2015-4335 / CVE-2022-24735 (code injection through loadstring); text load() too
-- expect: refused
-- error: undefined global 'load'
local f = load("return 1")
