rule{name='r',key='k',pattern=begin('a'):where{type='a'}:times(2):consecutive():followed_by('c'):where{type='c'}}
