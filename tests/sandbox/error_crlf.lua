-- mirrors: log injection through an error message (vigil check output, the server's log)
-- expect: refused
-- error: boom
error("boom\r\nINJECTED: vigil: a fake log line\n")
