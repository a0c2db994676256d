rule{name='r',key='k',pattern=begin('a'):where{type='x'}:or_where{type='y'}}
