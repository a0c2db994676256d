-- Scenario 3: a compromised card. The fraudster's transactions are about 5x
-- the holder's usual amount. Compare each transaction with the customer's
-- own history over 30 days (prior(): the window without this event).
rule {
  name        = "amount_spike",
  description = "Transaction far above the customer's own 30-day average",
  severity    = "medium",
  key         = "customer_id",
  where       = { type = "tx" },
  window      = sliding("30d"),
  when        = all_of{ ge(prior(count()), 5), gt(e.tx_amount, 3 * prior(avg("tx_amount"))) },
  examples    = {
    { events = {
        { type = "tx", customer_id = 1, tx_amount = 20, ts = 0 },
        { type = "tx", customer_id = 1, tx_amount = 25, ts = 3600 },
        { type = "tx", customer_id = 1, tx_amount = 15, ts = 7200 },
        { type = "tx", customer_id = 1, tx_amount = 20, ts = 10800 },
        { type = "tx", customer_id = 1, tx_amount = 20, ts = 14400 },
        { type = "tx", customer_id = 1, tx_amount = 100, ts = 18000 },   -- 5x the average of 20
      }, alerts = 1 },
    { events = {   -- too little history to judge
        { type = "tx", customer_id = 1, tx_amount = 20, ts = 0 },
        { type = "tx", customer_id = 1, tx_amount = 100, ts = 3600 },
      }, alerts = 0 },
  },
}
