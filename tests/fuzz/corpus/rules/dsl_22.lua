rule{name='r',key='k',window=sliding('30d'),when=all_of{ge(prior(count()),2),gt(e.amount,2*prior(avg('amount'))+1)}}
