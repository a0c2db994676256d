rule{name='r',key='k',pattern=begin('a'):where{email=matches('@(mailinator|guerrillamail)\\.com$','i')}}
