rule{name='r',key='k',pattern=begin('login'):where{type='login'}:followed_by('pay'):where{type='pay',country=ne(ref('login','country'))}}
