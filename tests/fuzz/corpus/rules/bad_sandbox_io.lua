-- sandbox: io is not available (line 3)
local function read(p)
  return io.open(p):read("a")
end
read("/etc/passwd")
