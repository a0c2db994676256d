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
}
