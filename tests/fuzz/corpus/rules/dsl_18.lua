rule{name='r',key='k',window=tumbling('1m'),when=ge(count(),2)}
