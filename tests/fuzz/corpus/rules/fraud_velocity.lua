-- Velocity: many transactions on one card within an hour. The card data
-- has no velocity fraud, so this rule runs in shadow mode: its alerts go
-- to the dashboard, the alerts API and NATS vigil.shadow.velocity_1h, never
-- to webhooks — the way an analyst would trial a new rule.
rule {
  name        = "velocity_1h",
  description = "Five or more transactions on one card within an hour",
  severity    = "low",
  key         = "customer_id",
  where       = { type = "tx" },
  window      = sliding("1h"),
  when        = ge(count(), 5),
  suppress    = "1h",
  mode        = "shadow",
  examples    = {
    { events = {
        { type = "tx", customer_id = 1, ts = 0 }, { type = "tx", customer_id = 1, ts = 600 },
        { type = "tx", customer_id = 1, ts = 1200 }, { type = "tx", customer_id = 1, ts = 1800 },
        { type = "tx", customer_id = 1, ts = 2400 }, { type = "tx", customer_id = 1, ts = 3000 },
      }, alerts = 1 },   -- the 5th fires; the 6th is suppressed for an hour
  },
}
