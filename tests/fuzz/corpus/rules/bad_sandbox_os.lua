-- sandbox: os is not available (line 2)
os.execute("touch /tmp/vigil-pwned")
