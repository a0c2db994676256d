rule{name='r',key='k',window=sliding('1h'),when=all_of{ge(sum('a'),30),lt(min('a'),5),gt(max('a'),20)}}
