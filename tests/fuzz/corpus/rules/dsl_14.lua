rule{name='r',key='k',pattern=begin('a'):where{type='a'}:not_next('b'):where{type='b'}:followed_by('c'):where{type='c'}}
