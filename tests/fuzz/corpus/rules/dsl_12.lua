rule{name='r',key='k',pattern=begin('a'):where{type='a'}:one_or_more():stop_when{type='stop'}:followed_by('c'):where{type='c'}}
