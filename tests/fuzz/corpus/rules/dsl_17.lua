rule{name='r',key='k',where={type='tx'},window=sliding('1h'),when=ge(count(),3),suppress='1h'}
