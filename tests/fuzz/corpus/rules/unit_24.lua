rule{name='no_ok',key='k',within='10m',pattern=begin('fail'):where{type='fail'}:times(2):not_followed_by('ok'):where{type='ok'}}
