rule{name='r',key='k',window=sliding('1d'),when=all_of{ge(distinct('device'),3),is_new('device')}}
