-- mirrors: CVE-2025-49844 (collectgarbage forces a GC while the parser holds a string)
-- expect: refused
-- error: undefined global 'collectgarbage'
collectgarbage("collect")
