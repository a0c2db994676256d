-- mirrors: CVE-2025-46817 / Redis string.rep memory; a 10 GB string.rep
-- expect: refused
-- error: memory cap exceeded
local s = string.rep("x", 1e10)
