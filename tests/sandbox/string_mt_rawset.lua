-- mirrors: CVE-2025-46818; rawset on the string metatable: the chunk only gets a read-only
-- view (an empty proxy), so rawset changes the proxy and nothing else
-- expect: compiles
-- alerts: 4
rawset(getmetatable(""), "__index", function() return function() return "pwned" end end)
assert(("abc"):upper() == "ABC", "the string methods changed")
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" } }
