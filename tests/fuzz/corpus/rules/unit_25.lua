rule{name='per_min',key='k',window=tumbling('1m'),when=ge(count(),1)}
