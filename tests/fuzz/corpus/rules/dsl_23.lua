rule{name='r',key='k',window=sliding('1h'),when=lt(prior(avg('amount')),1000)}
