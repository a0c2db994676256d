-- Golden cases: window rules (sliding, tumbling, session), for completeness. These are not
-- FlinkCEP patterns: the semantics are vigil's (DESIGN.md §3 "Windows", docs/rules.md
-- "Window rules"); tumbling and session windows follow Flink's DataStream windows (Flink
-- docs "DataStream API / Operators / Windows": Tumbling Windows, Session Windows), while
-- vigil's sliding(d) is exact over (t - d, t] at every event (Flink's sliding windows hop
-- by a slide instead). A sliding alert lists the current event; a tumbling or session
-- alert lists the window's events. Format, helper and citations: tests/rules/README.md.

-- seq("a1 b1 c@7") -> { {id="a1", type="a", ts=1, k="k1"}, {id="b1", type="b", ts=2, k="k1"},
-- {id="c", type="c", ts=7, k="k1"} }: the type is the id's leading letters, the time (epoch
-- seconds) the position in the list unless given after '@'; extra[id] adds or overrides fields.
local function seq(s, extra)
  local evs, i = {}, 0
  for tok in s:gmatch("%S+") do
    i = i + 1
    local id, ts, at = tok, i, tok:find("@", 1, true)
    if at then id, ts = tok:sub(1, at - 1), tonumber(tok:sub(at + 1)) end
    local e = { id = id, type = id:match("^[%a_]+"), ts = ts, k = "k1" }
    for f, v in pairs(extra and extra[id] or {}) do e[f] = v end
    evs[i] = e
  end
  return evs
end

-- vigil DESIGN.md §3 "Windows", sliding: exact over (t - 1h, t], the current event
-- included, evaluated at every event that passes where{}. Three or more transactions
-- within an hour: tx3 and tx4 alert ("other" is not counted); the window of tx5,
-- (3700 - 3600, 3700], holds tx5 alone.
rule { name = "win_sliding_count", key = "k",
  where = { type = "tx" }, window = sliding("1h"), when = ge(count(), 3),
  examples = {
    { events = seq("tx1@0 tx2@10 other@15 tx3@20 tx4@30 tx5@3700"), matches = { { "tx3" }, { "tx4" } } },
  } }

-- Same section: a sum with a filter, and suppress (at most one alert per key per period):
-- the amount of "tx" events over 10 minutes reaches 100 at tx3; tx4 would alert again but
-- is suppressed for 1 h; tx5 an hour later alerts.
rule { name = "win_sliding_sum_suppress", key = "k",
  window = sliding("10m"), when = ge(sum("amount", { type = "tx" }), 100), suppress = "1h",
  examples = {
    { events = seq("tx1@0 refund@10 tx2@20 tx3@30 tx4@40 tx5@3700 tx6@3710",
                   { tx1 = { amount = 40 }, refund = { amount = 500 }, tx2 = { amount = 40 },
                     tx3 = { amount = 30 }, tx4 = { amount = 30 }, tx5 = { amount = 60 }, tx6 = { amount = 50 } }),
      matches = { { "tx3" }, { "tx6" } } },
  } }

-- Same section, prior(): the current amount is more than twice the average of the
-- window without it (at least two earlier events): t3 = 22 is exactly twice (10 + 12) / 2,
-- not more; t4 = 70 is more than twice (10 + 12 + 22) / 3.
rule { name = "win_sliding_prior_avg", key = "k",
  window = sliding("1d"), when = all_of{ ge(prior(count()), 2), gt(e.amount, 2 * prior(avg("amount"))) },
  examples = {
    { events = seq("t1@0 t2@1 t3@2 t4@3",
                   { t1 = { amount = 10 }, t2 = { amount = 12 }, t3 = { amount = 22 }, t4 = { amount = 70 } }),
      matches = { { "t4" } } },
  } }

-- Flink docs "Windows / Tumbling Windows" (fixed, non-overlapping, aligned to the epoch)
-- and vigil DESIGN.md §3: one evaluation per closed window, when the watermark passes its
-- end. Two or more events per minute: [0, 60) has 3, [60, 120) has 1, [120, 180) has 2
-- (closed at the end of the input).
rule { name = "win_tumbling_count", key = "k",
  window = tumbling("1m"), when = ge(count(), 2),
  examples = {
    { events = seq("e1@0 e2@30 e3@59 e4@61 e5@130 e6@140"), matches = { { "e1", "e2", "e3" }, { "e5", "e6" } } },
  } }

-- Flink docs "Windows / Session Windows" (a key's activity separated by a gap of
-- inactivity) and vigil DESIGN.md §3: evaluated once the gap has elapsed. Sessions with a
-- 30 s gap whose amounts sum to 100 or more: {s1 s2} (50 + 60); {s3 s4} sums to 15.
rule { name = "win_session_sum", key = "k",
  window = session("30s"), when = ge(sum("amount"), 100),
  examples = {
    { events = seq("s1@0 s2@20 s3@100 s4@120",
                   { s1 = { amount = 50 }, s2 = { amount = 60 }, s3 = { amount = 10 }, s4 = { amount = 5 } }),
      matches = { { "s1", "s2" } } },
  } }

-- Flink's session windows are merging windows of [t, t + gap) per event, merged when they
-- intersect (TimeWindow.intersects: touching counts): an event exactly `gap` after the
-- previous one joins its session; one a millisecond later starts a new one.
rule { name = "win_session_touching", key = "k",
  window = session("30s"), when = ge(count(), 1),
  examples = {
    { events = seq("s1@0 s2@30 s3@61 s4@100"), matches = { { "s1", "s2" }, { "s3" }, { "s4" } } },
    { events = { { id = "t1", type = "t", ts = 0, k = "k1" }, { id = "t2", type = "t", ts = 30.001, k = "k1" } },
      matches = { { "t1" }, { "t2" } } },
  } }

-- Same sections, several keys: windows are per key; the other key's events move the
-- watermark, which closes u1's session without a new event of u1.
rule { name = "win_session_keys", key = "user",
  window = session("30s"), when = ge(count(), 2),
  examples = {
    { events = { { id = "a1", user = "u1", ts = 0 }, { id = "b1", user = "u2", ts = 5 },
                 { id = "a2", user = "u1", ts = 10 }, { id = "b2", user = "u2", ts = 100 },
                 { id = "b3", user = "u2", ts = 110 } },
      matches = { { "a1", "a2" }, { "b2", "b3" } } },
  } }

-- Flink docs "Windows / Session Windows": session windows are merging windows — each
-- event opens [t, t + gap) and overlapping ones merge, so an event that arrives out of
-- order can join two sessions into one. s3@40 arrives after s4@60: with a 25 s gap,
-- {s1@0 s2@20} and {s4@60} are apart, s3 bridges them. Within max_out_of_orderness (30 s)
-- the watermark has not passed the first session's end (45 s) when s3 comes, so the
-- sessions merge and alert once, over all four events.
rule { name = "win_session_merge_ooo", key = "k",
  window = session("25s"), when = ge(count(), 4),
  examples = {
    { events = seq("s1@0 s2@20 s4@60 s3@40"), max_out_of_orderness = "30s",
      matches = { { "s1", "s2", "s3", "s4" } } },
    -- processed on arrival, s3 is late: never matched, and the sessions stay apart
    { events = seq("s1@0 s2@20 s4@60 s3@40"), late = { "s3" }, matches = {} },
  } }

-- The same with allowed_lateness instead: events behind the watermark join the open
-- session when their own [t, t + gap) overlaps it, so the session grows backwards
-- (s3@40, then s2@20); s1@0 is more than 45 s behind the watermark (60 s): late. The
-- alert lists the events in arrival order, the latest (s4) last.
rule { name = "win_session_merge_late", key = "k",
  window = session("25s"), when = ge(count(), 3),
  examples = {
    { events = seq("s4@60 s3@40 s2@20 s1@0"), allowed_lateness = "45s",
      matches = { { "s3", "s2", "s4" } }, late = { "s1" } },
  } }

-- Flink docs "Windows / Allowed Lateness": an element for a window that has already fired
-- is not added to a later window. e3@50 belongs to [0, 60), which closed when e4@61
-- arrived; with 20 s of lateness it is accepted, but counted late for its window
-- (window_late), never counted in [60, 120).
rule { name = "win_tumbling_late_for_window", key = "k",
  window = tumbling("1m"), when = ge(count(), 2),
  examples = {
    { events = seq("e1@0 e2@30 e4@61 e3@50 e5@70"), allowed_lateness = "20s",
      matches = { { "e1", "e2" }, { "e4", "e5" } } },
  } }

-- vigil DESIGN.md §3 "Events" (no implicit conversion: 596 and "596" differ) and
-- "Windows" (distinct count, is_new): values keep their type, so the number 5 and the
-- text "5", true and "true" are four values; 5 and 5.0 are one number (issue 17).
rule { name = "win_distinct_typed", key = "k",
  window = sliding("1h"), when = ge(distinct("v"), 4),
  examples = {
    { events = seq("x1 x2 x3 x4 x5", { x1 = { v = 5 }, x2 = { v = "5" }, x3 = { v = true },
                                      x4 = { v = "true" }, x5 = { v = 5.0 } }),
      matches = { { "x4" }, { "x5" } } },
  } }
rule { name = "win_is_new_typed", key = "k",
  window = sliding("1h"), when = is_new("v"),
  examples = {
    { events = seq("y1 y2 y3 y4 y5", { y1 = { v = 5 }, y2 = { v = "5" }, y3 = { v = true },
                                      y4 = { v = "true" }, y5 = { v = 5 } }),
      matches = { { "y1" }, { "y2" }, { "y3" }, { "y4" } } },
  } }

-- vigil DESIGN.md §3 "Windows": a straggler accepted within allowed_lateness is evaluated
-- over its own window (t - size, t] and enters and leaves the window by its own time
-- (issue 17). e4@5 arrives after e3@9: its window (-5, 5] holds e1 and e4 (count 2, no
-- alert); e5@15.5's window (5.5, 15.5] holds e2, e3 and e5 (e4 has left).
rule { name = "win_sliding_straggler", key = "k",
  window = sliding("10s"), when = ge(count(), 3),
  examples = {
    { events = seq("e1@0 e2@8 e3@9 e4@5 e5@15.5"), allowed_lateness = "10s",
      matches = { { "e3" }, { "e5" } }, late = {} },
  } }
-- Same section: the straggler's own window reaches back before the newest event's:
-- e1@0 left e2@12's window (2, 12] but is still in e4@5's (-5, 5], so e4 sums 100 + 1.
rule { name = "win_sliding_straggler_reach", key = "k",
  window = sliding("10s"), when = ge(sum("amount"), 101),
  examples = {
    { events = seq("e1@0 e2@12 e4@5", { e1 = { amount = 100 }, e2 = { amount = 1 }, e4 = { amount = 1 } }),
      allowed_lateness = "10s", matches = { { "e4" } }, late = {} },
  } }

-- vigil DESIGN.md §3 "Windows": a straggler reaching a tumbling or session window that
-- the watermark closed but still retains (within allowed_lateness) updates it; a window
-- that has not alerted alerts then if `when` now holds — never twice (Flink docs
-- "Windows / Allowed Lateness" fires the window again; vigil alerts once per window;
-- issue 17). [0, 60) closes with e1 e2 when e4@61 comes (2 < 3, no alert); e3@50 makes
-- it 3: it alerts with e1 e2 e3. With when = ge(count(), 2) it alerted at its close, and
-- e3 changes nothing (win_tumbling_late_for_window above).
rule { name = "win_tumbling_straggler_alerts", key = "k",
  window = tumbling("1m"), when = ge(count(), 3),
  examples = {
    { events = seq("e1@0 e2@30 e4@61 e3@50 e5@70"), allowed_lateness = "20s",
      matches = { { "e1", "e2", "e3" } }, late = {} },
  } }
-- The same for a session: {s1 s2} closes (watermark 40 > 5 + 10) with 2 events; s3@8
-- joins it and it alerts; s4 is a session of its own.
rule { name = "win_session_straggler_alerts", key = "k",
  window = session("10s"), when = ge(count(), 3),
  examples = {
    { events = seq("s1@0 s2@5 s4@40 s3@8"), allowed_lateness = "35s",
      matches = { { "s1", "s2", "s3" } }, late = {} },
  } }
-- docs/rules.md §7.1 (issue 17 item 6): an event exactly `gap` from a session joins it
-- (Flink's TimeWindow.intersects: touching windows merge; win_session_touching above),
-- also when it is a straggler reaching a retained session from before: s0@0 touches
-- {s1@10 s2@15} (0 + 10 = 10) and makes three; one a millisecond earlier does not.
rule { name = "win_session_touching_straggler", key = "k",
  window = session("10s"), when = ge(count(), 3),
  examples = {
    { events = seq("s1@10 s2@15 s4@50 s0@0"), allowed_lateness = "60s",
      matches = { { "s1", "s0", "s2" } }, late = {} },
    { events = { { id = "s1", type = "s", ts = 10, k = "k1" }, { id = "s2", type = "s", ts = 15, k = "k1" },
                 { id = "s4", type = "s", ts = 50, k = "k1" }, { id = "s0", type = "s", ts = -0.001, k = "k1" } },
      allowed_lateness = "60s", matches = {}, late = {} },
  } }
