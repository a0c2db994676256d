-- mirrors: CVE-2015-4335 (Redis: loadstring of crafted bytecode); string.dump makes bytecode
-- expect: refused
-- error: string.dump is not available
local bc = string.dump(function() return 1 end)
rule { name = "escape", key = "card", pattern = begin("a") }
