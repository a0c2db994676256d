-- Golden cases: several keys. Each key value is its own stream (FlinkCEP on a keyed
-- stream: one NFA per key); events of other keys interleaved in the input are neither
-- "between" two events of a key (next, not_next) nor able to complete or cut its matches,
-- and skip strategies prune only the key's own runs. Format and citations:
-- tests/rules/README.md.
--
-- FlinkCEP's default after-match skip strategy is NO_SKIP, vigil's is
-- skip_past_last_event: rules that reproduce a FlinkCEP result say skip = "no_skip".

-- E(id, key, ts, type): one event; the type defaults to the id's leading letters.
local function E(id, key, ts, ty)
  return { id = id, user = key, ts = ts, type = ty or id:match("^[%a_]+") }
end

-- flink-cep NFAITCase testStrictContinuityWithResults on a keyed stream (Flink docs,
-- FlinkCEP "Detecting Patterns": the input stream can be keyed or non-keyed): a next b;
-- another user's event between a1 and b1 does not break strict contiguity.
rule { name = "keys_strict_interleaved", key = "user", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = { E("a1", "u1", 3), E("x1", "u2", 4), E("b1", "u1", 5) }, matches = { { "a1", "b1" } } },
    { events = { E("a1", "u1", 3), E("x1", "u1", 4), E("b1", "u1", 5) }, matches = {} },
  } }

-- Flink docs, FlinkCEP "Pattern API / Combining Patterns" ("a b" on a, c, b1, b2), two
-- users interleaved: relaxed contiguity gives {a b1} per user; u2's b does not complete u1.
rule { name = "keys_docs_relaxed", key = "user", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = { E("a_u1", "u1", 1, "a"), E("a_u2", "u2", 2, "a"), E("c_u1", "u1", 3, "c"), E("b1_u2", "u2", 4, "b"),
                 E("b1_u1", "u1", 5, "b"), E("c_u2", "u2", 6, "c"), E("b2_u1", "u1", 7, "b"), E("b2_u2", "u2", 8, "b") },
      matches = { { "a_u2", "b1_u2" }, { "a_u1", "b1_u1" } } },
  } }

-- Same docs section, non-deterministic relaxed contiguity per user: {a b1}, {a b2} for
-- each user, in the order the b's arrive.
rule { name = "keys_docs_any", key = "user", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by_any("b"):where{ type = "b" },
  examples = {
    { events = { E("a_u1", "u1", 1, "a"), E("a_u2", "u2", 2, "a"), E("c_u1", "u1", 3, "c"), E("b1_u2", "u2", 4, "b"),
                 E("b1_u1", "u1", 5, "b"), E("c_u2", "u2", 6, "c"), E("b2_u1", "u1", 7, "b"), E("b2_u2", "u2", 8, "b") },
      matches = { { "a_u2", "b1_u2" }, { "a_u1", "b1_u1" }, { "a_u1", "b2_u1" }, { "a_u2", "b2_u2" } } },
  } }

-- flink-cep AfterMatchSkipITCase testNoSkip (a times(3), NO_SKIP) on two users
-- interleaved: u1's a's and u2's a's never mix.
rule { name = "keys_times_no_skip", key = "user", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:times(3),
  examples = {
    { events = { E("p1", "u1", 1, "a"), E("q1", "u2", 2, "a"), E("p2", "u1", 3, "a"), E("q2", "u2", 4, "a"),
                 E("p3", "u1", 5, "a"), E("q3", "u2", 6, "a"), E("p4", "u1", 7, "a") },
      matches = { { "p1", "p2", "p3" }, { "q1", "q2", "q3" }, { "p2", "p3", "p4" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipPastLast (a times(3), SKIP_PAST_LAST_EVENT) on
-- two users interleaved: a match of u1 discards only u1's partial matches.
rule { name = "keys_skip_past_last", key = "user", skip = "skip_past_last_event",
  pattern = begin("start"):where{ type = "a" }:times(3),
  examples = {
    { events = { E("p1", "u1", 1, "a"), E("p2", "u1", 2, "a"), E("q1", "u2", 3, "a"), E("p3", "u1", 4, "a"),
                 E("q2", "u2", 5, "a"), E("p4", "u1", 6, "a"), E("q3", "u2", 7, "a"), E("q4", "u2", 8, "a") },
      matches = { { "p1", "p2", "p3" }, { "q1", "q2", "q3" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToNextWithFollowedByAny (SKIP_TO_NEXT) on two
-- users interleaved -> {a1 b1} and {a2 b2} for each user.
rule { name = "keys_skip_to_next", key = "user", skip = "skip_to_next",
  pattern = begin("start"):where{ type = "a" }:followed_by_any("end"):where{ type = "b" },
  examples = {
    { events = { E("a1", "u1", 1), E("A1", "u2", 1, "a"), E("b1", "u1", 2), E("B1", "u2", 2, "b"),
                 E("a2", "u1", 4), E("A2", "u2", 4, "a"), E("b2", "u1", 5), E("B2", "u2", 5, "b") },
      matches = { { "a1", "b1" }, { "A1", "B1" }, { "a2", "b2" }, { "A2", "B2" } } },
  } }

-- flink-cep NotPatternITCase testNotNext (a notNext b followedByAny c followedBy d) with
-- another user's b right after a1: it is not u1's next event, so it does not negate.
rule { name = "keys_not_next", key = "user", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_next("not"):where{ type = "b" }
            :followed_by_any("middle"):where{ type = "c" }:followed_by("end"):where{ type = "d" },
  examples = {
    { events = { E("a1", "u1", 1), E("b0", "u2", 2), E("c1", "u1", 3), E("b1", "u1", 4), E("c2", "u1", 5),
                 E("d", "u1", 6) },
      matches = { { "a1", "c1", "d" }, { "a1", "c2", "d" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByWithinFirstAndLastAtEnd (a notFollowedBy b
-- within, at the end: an absence) per user: u2's b does not cancel u1's absence; the
-- absence of u1 fires when another user's event moves the watermark past a + within.
rule { name = "keys_absence", key = "user", skip = "no_skip", within = "3s",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("b"):where{ type = "b" },
  examples = {
    { events = { E("a1", "u1", 1), E("a2", "u2", 1), E("b2", "u2", 2), E("x", "u3", 4), E("a3", "u3", 5),
                 E("b3", "u3", 6) },
      matches = { { "a1" } } },
  } }

-- flink-cep NFAITCase testSimplePatternWithTimeWindowNFA (within) per user: the
-- time constraint runs from each user's own first event.
rule { name = "keys_within", key = "user", skip = "no_skip", within = "10s",
  pattern = begin("start"):where{ type = "start" }:followed_by("end"):where{ type = "end" },
  examples = {
    { events = { E("s1", "u1", 1, "start"), E("s2", "u2", 5, "start"), E("e1", "u1", 12, "end"),
                 E("e2", "u2", 13, "end") },
      matches = { { "s2", "e2" } } },
  } }

-- No FlinkCEP counterpart (keyBy needs a key): vigil DESIGN.md §3 "Events" -- an event
-- that lacks the key of the rule's key group is rejected (not matched) and counted, so it
-- is not "between" two events of a key: a next b still matches across it.
rule { name = "keys_missing_key", key = "user", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = { E("a1", "u1", 1), { id = "nokey", type = "x", ts = 2 }, E("b1", "u1", 3) },
      matches = { { "a1", "b1" } } },
  } }

-- vigil DESIGN.md §3 "Events": keys are taken from the raw text and compare as strings,
-- never through a double, so the numbers 1, 1.0, 1e0 and 01 (which the JSON decoder
-- accepts) are four keys (issue 17). a1 has key 1: only b4, also key 1, follows it.
rule { name = "keys_raw_number_text", key = "user", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = { '{"id":"a1","type":"a","ts":1,"user":1}',
                 '{"id":"b1","type":"b","ts":2,"user":1.0}',
                 '{"id":"b2","type":"b","ts":3,"user":1e0}',
                 '{"id":"b3","type":"b","ts":4,"user":01}',
                 '{"id":"b4","type":"b","ts":5,"user":1}' },
      matches = { { "a1", "b4" } } },
    -- the key field's name elsewhere in the event (a value, a nested member) does not mislead
    { events = { '{"id":"a1","type":"a","ts":1,"user":1.0}',
                 '{"id":"b1","type":"b","ts":2,"note":"user","x":{"user":1},"user":1}',
                 '{"id":"b2","type":"b","ts":3,"x":{"user":1.0},"note":"user","user":1.0}' },
      matches = { { "a1", "b2" } } },
    -- keys compare as text: the string "1" and the number 1 are one key, 1.0 another
    { events = { '{"id":"a1","type":"a","ts":1,"user":"1"}',
                 '{"id":"b1","type":"b","ts":2,"user":1.0}',
                 '{"id":"b2","type":"b","ts":3,"user":1}' },
      matches = { { "a1", "b2" } } },
  } }
-- Same section: a nested key field (card.id) is read from its raw text too.
rule { name = "keys_raw_nested", key = "card.id", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = { '{"id":"a1","type":"a","ts":1,"card":{"bin":4,"id":10}}',
                 '{"id":"b1","type":"b","ts":2,"card":{"id":1e1}}',
                 '{"id":"b2","type":"b","ts":3,"card":{"id":10.0,"x":[1,{"id":10}]}}',
                 '{"id":"b3","type":"b","ts":4,"card":{"x":{"id":1},"id":10}}' },
      matches = { { "a1", "b3" } } },
  } }
