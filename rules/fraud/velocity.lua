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
}
