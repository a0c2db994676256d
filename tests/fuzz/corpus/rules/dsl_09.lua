rule{name='r',key='k',within='10m',pattern=begin('fail'):where{type='login',ok=false}:times(3):followed_by('ok'):where{type='login',ok=true}}
