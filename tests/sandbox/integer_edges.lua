-- mirrors: CVE-2025-46817, CVE-2020-14147, CVE-2018-11219 (integer edges in library
-- functions: struct.pack sizes, unpack ranges); every call below must fail cleanly
-- expect: compiles
-- alerts: 4
local big, small = math.maxinteger, math.mininteger
local calls = {
  function() return table.unpack({}, 0, big) end,
  function() return table.move({ 1 }, 1, big, 2) end,
  function() return table.insert({}, big, 1) end,
  function() return table.concat({}, "", 1, big) end,
  function() return string.format("%.99999f", 1) end,
  function() return string.format("%" .. ("9"):rep(40) .. "d", 1) end,
  function() return string.pack("i17", 1) end,
  function() return string.packsize("c" .. big .. "c" .. big) end,
  function() return string.unpack("s4", "\255\255\255\127") end,
  function() return string.unpack("z", "abc", big) end,
  function() return utf8.char(-1) end,
  function() return utf8.codepoint(("x"):rep(4000), 1, -1, true) and utf8.codepoint("x", 1, big) end,
  function() return select(small, 1) end,
  function() return ("x"):sub(small, big) .. select(-1) end,
}
for i, f in ipairs(calls) do
  local ok = pcall(f)
  assert(not ok, "integer edge " .. i .. " did not fail")
end
rule { name = "escape", key = "card", pattern = begin("a"):where{ type = "tx" } }
