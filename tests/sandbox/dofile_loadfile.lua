-- mirrors: sandbox basics; dofile/loadfile read and run any file
-- expect: refused
-- error: undefined global 'dofile'
dofile("/etc/passwd")
