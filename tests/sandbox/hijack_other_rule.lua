-- mirrors: CVE-2025-46818 (run in another user's context): a PUT of /v1/rules/escape that
-- defines the rule `good` (another analyst's rule) instead
-- expect: compiles
-- expect-put: refused
-- error: good
rule { name = "good", key = "card", pattern = begin("a"):where{ type = "never" } }
