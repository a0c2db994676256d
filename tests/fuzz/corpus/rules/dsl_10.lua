rule{name='r',key='k',pattern=begin('a'):where{type='a'}:next('b'):where{type='b'}}
