local t = {}
while true do
  pcall(function() t[#t + 1] = string.rep('x', 65536) .. #t end)
end

