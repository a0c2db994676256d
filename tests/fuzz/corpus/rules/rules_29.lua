local d = ("").dump
