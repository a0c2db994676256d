rule{name='r',key='k',window=session('30s'),when=ge(sum('amount'),100)}
