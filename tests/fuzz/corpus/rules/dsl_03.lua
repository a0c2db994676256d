rule{name='r',key='k',pattern=begin('a'):where{amount=between(5,10),country=one_of{'FR','DE'},channel=ne('atm')}}
