error('custom failure')
