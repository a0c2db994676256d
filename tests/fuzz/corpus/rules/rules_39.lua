assert(('card_id'):gsub('_', '.') == 'card.id')
assert(('a-b'):find('-', 1, true) == 2 and ('x12'):match('%d+') == '12')
for w in ('a b c'):gmatch('%a') do end

