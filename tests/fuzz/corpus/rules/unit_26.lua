rule{name='big',key='k',where={amount=gt(100)},window=sliding('1h'),when=ge(count(),1),
  examples={ {events={ {k=1,amount=150,ts=0}, {k=1,amount=5,ts=1,tags={'a','b'}} }, alerts=1 },
             {events={ {k=1,amount=50,ts=0} }, alerts=0} } }
