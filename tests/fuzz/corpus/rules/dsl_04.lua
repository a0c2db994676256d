rule{name='r',key='k',pattern=begin('a'):where{device=exists(),promo=missing()}}
