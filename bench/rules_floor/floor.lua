-- The floor of a replay (issue 16, bench/targets.sh row a): one rule that
-- routes every event by customer_id (the key of most of rules/fraud) and
-- never matches. The engine still decodes the event, finds or creates the
-- customer's key state and evaluates the rule's where, which no event
-- passes (replay's types are "tx" and "report"): decode + route, nothing
-- else. rules/fraud has a second key group (terminal_id), so its replay
-- routes each event twice; this floor routes it once.
rule { name = "floor", key = "customer_id", where = { type = "never" },
       window = sliding("30d"), when = ge(count(), 1) }
