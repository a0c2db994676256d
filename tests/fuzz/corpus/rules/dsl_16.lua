rule{name='r',key='k',within='10m',pattern=begin('fail'):where{type='fail'}:times(3):not_followed_by('ok'):where{type='ok'}}
