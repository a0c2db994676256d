-- A temporal pattern: small "probe" transactions followed by a large one on
-- the same card within an hour (card testing, then cash-out).
rule {
  name        = "small_then_large",
  description = "Three small transactions (< 10) followed by one above 150 within 1 hour",
  severity    = "medium",
  key         = "customer_id",
  pattern     = begin("probe"):where{ type = "tx", tx_amount = lt(10) }:times_or_more(3)
                :followed_by("cashout"):where{ type = "tx", tx_amount = gt(150) },
  within      = "1h",
  skip        = "skip_past_last_event",
  examples    = {
    { events = {
        { type = "tx", customer_id = 1, tx_amount = 1, ts = 0 },
        { type = "tx", customer_id = 1, tx_amount = 2, ts = 60 },
        { type = "tx", customer_id = 1, tx_amount = 40, ts = 90 },
        { type = "tx", customer_id = 1, tx_amount = 1.5, ts = 120 },
        { type = "tx", customer_id = 1, tx_amount = 300, ts = 600 },
      }, alerts = 1 },
    { events = {   -- the cash-out comes too late
        { type = "tx", customer_id = 1, tx_amount = 1, ts = 0 },
        { type = "tx", customer_id = 1, tx_amount = 2, ts = 60 },
        { type = "tx", customer_id = 1, tx_amount = 3, ts = 120 },
        { type = "tx", customer_id = 1, tx_amount = 300, ts = 3700 },
      }, alerts = 0 },
  },
}
