rule{name='r',key='k',pattern=begin('a'):where{type='x',amount=gt(10)}}
