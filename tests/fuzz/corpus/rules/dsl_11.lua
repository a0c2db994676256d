rule{name='r',key='k',skip='no_skip',pattern=begin('a'):where{type='a'}:followed_by('m'):where{type='m'}:optional():followed_by('c'):where{type='c'}}
