rule{name='r',key='k',pattern=begin('a'):where{code=596}}
