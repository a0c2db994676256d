rule{name='r',key='k',pattern=begin('a'):where{['card.bin']='4111'}}
