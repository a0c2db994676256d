-- mirrors: CVE-2022-24735; rawset on the library views, _G and _ENV: changes only what this
-- chunk sees; the DSL prelude keeps the real tables and another file has its own state
-- expect: compiles
-- alerts: 4
rawset(string, "format", function() return "pwned" end)
rawset(table, "insert", function() error("pwned") end)
rawset(_G, "tostring", function() return "pwned" end)
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" } }
