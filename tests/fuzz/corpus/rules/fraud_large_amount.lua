-- Scenario 1 of the card data: a single transaction above 220 is fraud.
-- Keyed by customer so that the alert lands on the card holder's stream.
rule {
  name        = "large_amount",
  description = "A single card transaction above 220",
  severity    = "high",
  key         = "customer_id",
  where       = { type = "tx", tx_amount = gt(220) },
  window      = sliding("1h"),
  when        = ge(count(), 1),
  examples    = {
    { events = { { type = "tx", customer_id = 1, tx_amount = 250.0, ts = 0 } }, alerts = 1 },
    { events = { { type = "tx", customer_id = 1, tx_amount = 219.9, ts = 0 } }, alerts = 0 },
  },
}
