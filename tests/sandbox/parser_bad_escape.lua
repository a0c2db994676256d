-- mirrors: CVE-2025-46819 (lexer reads past the end); escapes cut at the end of the source
-- expect: refused
-- error: syntax error
local s = "\u{7FFFFFFF}\xff\z
