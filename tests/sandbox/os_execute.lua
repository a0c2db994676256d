-- mirrors: sandbox basics (Redis keeps only os.clock); run a command that writes the canary
-- expect: refused
-- error: undefined global 'os'
os.execute("touch /tmp/vigil-escape-canary canary")
