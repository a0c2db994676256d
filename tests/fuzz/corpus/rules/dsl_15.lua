rule{name='r',key='k',pattern=begin('a'):where{type='a'}:not_followed_by('b'):where{type='b'}:followed_by('c'):where{type='c'}}
