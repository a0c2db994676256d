-- Golden cases: the five after-match skip strategies (no_skip, skip_to_next,
-- skip_past_last_event, skip_to_first(step), skip_to_last(step)), FlinkCEP semantics.
-- Format, helper and citations: tests/rules/README.md.
--
-- FlinkCEP's default is NO_SKIP, vigil's is skip_past_last_event: every rule below names
-- its strategy explicitly, except the ones that show vigil's default.
-- The cases where vigil differs from FlinkCEP today are in pending/ (README.md).

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

-- Flink docs, FlinkCEP "After Match Skip Strategy", table for pattern "b+ c" and stream
-- "b1 b2 b3 c" (b+ then next c, as in docs/rules.md). NO_SKIP: b1 b2 b3 c, b2 b3 c, b3 c.
rule { name = "skip_docs_no_skip", key = "k", skip = "no_skip",
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- Same table, SKIP_TO_NEXT: b1 b2 b3 c, b2 b3 c, b3 c (no other match could start at b1).
rule { name = "skip_docs_skip_to_next", key = "k", skip = "skip_to_next",
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- Same table, SKIP_PAST_LAST_EVENT: b1 b2 b3 c (all started partial matches discarded).
rule { name = "skip_docs_skip_past_last_event", key = "k", skip = "skip_past_last_event",
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" } } },
  } }

-- Same table, SKIP_TO_FIRST[b]: b1 b2 b3 c, b2 b3 c, b3 c (no partial match started
-- before b1, nothing is discarded).
rule { name = "skip_docs_skip_to_first", key = "k", skip = skip_to_first("b"),
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- Same table, SKIP_TO_LAST[b]: b1 b2 b3 c, b3 c (b2 b3 c started before b3: discarded).
rule { name = "skip_docs_skip_to_last", key = "k", skip = skip_to_last("b"),
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- The same pattern without skip =: vigil's default is skip_past_last_event, not
-- FlinkCEP's NO_SKIP (docs/rules.md) -> b1 b2 b3 c only.
rule { name = "skip_docs_vigil_default", key = "k",
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" } } },
  } }

-- Flink docs, FlinkCEP "After Match Skip Strategy", pattern "a b+" and sequence
-- "a b1 b2 b3"; flink-cep AfterMatchSkipITCase testNoSkipWithQuantifierAtTheEnd (a next
-- b one_or_more). NO_SKIP: a b1, a b1 b2, a b1 b2 b3.
rule { name = "skip_docs_a_b_plus_no_skip", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:next("end"):where{ type = "b" }:one_or_more(),
  examples = {
    { events = seq("a b1 b2 b3"), matches = { { "a", "b1" }, { "a", "b1", "b2" }, { "a", "b1", "b2", "b3" } } },
  } }

-- Same example, SKIP_TO_NEXT (AfterMatchSkipITCase testSkipToNextWithQuantifierAtTheEnd):
-- a b1 only -- every partial match started at a is discarded.
rule { name = "skip_docs_a_b_plus_skip_to_next", key = "k", skip = "skip_to_next",
  pattern = begin("start"):where{ type = "a" }:next("end"):where{ type = "b" }:one_or_more(),
  examples = {
    { events = seq("a b1 b2 b3"), matches = { { "a", "b1" } } },
  } }

-- flink-cep AfterMatchSkipITCase testNoSkipWithFollowedByAny: a followedByAny b; input
-- a1 b1 a2 b2 -> {a1 b1}, {a1 b2}, {a2 b2}.
rule { name = "skip_followed_by_any_no_skip", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:followed_by_any("end"):where{ type = "b" },
  examples = {
    { events = seq("a1 b1 a2@4 b2@5"), matches = { { "a1", "b1" }, { "a1", "b2" }, { "a2", "b2" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToNextWithFollowedByAny: the same with
-- SKIP_TO_NEXT -> {a1 b1}, {a2 b2}.
rule { name = "skip_followed_by_any_skip_to_next", key = "k", skip = "skip_to_next",
  pattern = begin("start"):where{ type = "a" }:followed_by_any("end"):where{ type = "b" },
  examples = {
    { events = seq("a1 b1 a2@4 b2@5"), matches = { { "a1", "b1" }, { "a2", "b2" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipPastLast: a times(3) with SKIP_PAST_LAST_EVENT,
-- input a1..a6 -> {a1 a2 a3}, {a4 a5 a6}.
rule { name = "skip_past_last_times", key = "k", skip = "skip_past_last_event",
  pattern = begin("start"):where{ type = "a" }:times(3),
  examples = {
    { events = seq("a1 a2 a3 a4 a5 a6"), matches = { { "a1", "a2", "a3" }, { "a4", "a5", "a6" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipPastLast2: a followedByAny b followedByAny c
-- followedBy d with SKIP_PAST_LAST_EVENT; input a1 a2 b1 b2 c1 c2 d1 d2 -> {a1 b1 c1 d1}.
rule { name = "skip_past_last_any", key = "k", skip = "skip_past_last_event",
  pattern = begin("a"):where{ type = "a" }:followed_by_any("b"):where{ type = "b" }
            :followed_by_any("c"):where{ type = "c" }:followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a1 a2 b1 b2 c1 c2 d1@7 d2@7"), matches = { { "a1", "b1", "c1", "d1" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipPastLast3: a next b with SKIP_PAST_LAST_EVENT;
-- input a1 c a2 b2 -> {a2 b2}.
rule { name = "skip_past_last_next", key = "k", skip = "skip_past_last_event",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = seq("a1 c a2 b2"), matches = { { "a2", "b2" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToFirst: start (name contains a) times(2) next
-- end (name contains b) times(2), SKIP_TO_FIRST[end]; input ab1..ab6 -> {ab1 ab2 ab3 ab4},
-- {ab3 ab4 ab5 ab6}.
rule { name = "skip_to_first_times", key = "k", skip = skip_to_first("end"),
  pattern = begin("start"):where{ type = matches("a") }:times(2):next("end"):where{ type = matches("b") }:times(2),
  examples = {
    { events = seq("ab1 ab2 ab3 ab4 ab5 ab6"),
      matches = { { "ab1", "ab2", "ab3", "ab4" }, { "ab3", "ab4", "ab5", "ab6" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToLast: the same with SKIP_TO_LAST[end]; input
-- ab1..ab7 -> {ab1 ab2 ab3 ab4}, {ab4 ab5 ab6 ab7}.
rule { name = "skip_to_last_times", key = "k", skip = skip_to_last("end"),
  pattern = begin("start"):where{ type = matches("a") }:times(2):next("end"):where{ type = matches("b") }:times(2),
  examples = {
    { events = seq("ab1 ab2 ab3 ab4 ab5 ab6 ab7"),
      matches = { { "ab1", "ab2", "ab3", "ab4" }, { "ab4", "ab5", "ab6", "ab7" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToFirstAtStartPosition: b next c,
-- SKIP_TO_FIRST[b]; input ab1 c1 ab2 c2 -> {ab1 c1}, {ab2 c2}.
rule { name = "skip_to_first_start_position", key = "k", skip = skip_to_first("b"),
  pattern = begin("b"):where{ type = matches("b") }:next("c"):where{ type = matches("c") },
  examples = {
    { events = seq("ab1 c1 ab2 c2"), matches = { { "ab1", "c1" }, { "ab2", "c2" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToFirstWithOneOrMore: a next b one_or_more
-- consecutive, SKIP_TO_FIRST[b]; input a1 b1 a2 b2 b3 a3 b4 -> {a1 b1}, {a2 b2}, {a3 b4}.
rule { name = "skip_to_first_one_or_more", key = "k", skip = skip_to_first("b"),
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" }:one_or_more():consecutive(),
  examples = {
    { events = seq("a1 b1 a2 b2 b3 a3 b4"), matches = { { "a1", "b1" }, { "a2", "b2" }, { "a3", "b4" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToLastWithOneOrMore: the same with
-- SKIP_TO_LAST[b] -> {a1 b1}, {a2 b2}, {a3 b4}.
rule { name = "skip_to_last_one_or_more", key = "k", skip = skip_to_last("b"),
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" }:one_or_more():consecutive(),
  examples = {
    { events = seq("a1 b1 a2 b2 b3 a3 b4"), matches = { { "a1", "b1" }, { "a2", "b2" }, { "a3", "b4" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToFirstNonExistentPositionWithoutException: a
-- next b one_or_more optional consecutive next c, SKIP_TO_FIRST[b]; input a c -> {a c}
-- (no b in the match: nothing is skipped).
rule { name = "skip_to_first_missing_step", key = "k", skip = skip_to_first("b"),
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" }:one_or_more():optional():consecutive()
            :next("c"):where{ type = "c" },
  examples = {
    { events = seq("a c@4"), matches = { { "a", "c" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipPastLastWithOneOrMoreAtBeginning ("example from
-- docs"): a one_or_more consecutive greedy next b, SKIP_PAST_LAST_EVENT; input a1 a2 a3 b1
-- -> {a1 a2 a3 b1}.
rule { name = "skip_past_last_loop_at_start", key = "k", skip = "skip_past_last_event",
  pattern = begin("a"):where{ type = "a" }:one_or_more():consecutive():greedy():next("b"):where{ type = "b" },
  examples = {
    { events = seq("a1 a2 a3 b1"), matches = { { "a1", "a2", "a3", "b1" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToLastWithOneOrMoreAtBeginning: the same with
-- SKIP_TO_LAST[a] -> {a1 a2 a3 b1}, {a3 b1}.
rule { name = "skip_to_last_loop_at_start", key = "k", skip = skip_to_last("a"),
  pattern = begin("a"):where{ type = "a" }:one_or_more():consecutive():greedy():next("b"):where{ type = "b" },
  examples = {
    { events = seq("a1 a2 a3 b1"), matches = { { "a1", "a2", "a3", "b1" }, { "a3", "b1" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToFirstWithOneOrMoreAtBeginning: the same with
-- SKIP_TO_FIRST[a] -> {a1 a2 a3 b1}, {a2 a3 b1}, {a3 b1}.
rule { name = "skip_to_first_loop_at_start", key = "k", skip = skip_to_first("a"),
  pattern = begin("a"):where{ type = "a" }:one_or_more():consecutive():greedy():next("b"):where{ type = "b" },
  examples = {
    { events = seq("a1 a2 a3 b1"), matches = { { "a1", "a2", "a3", "b1" }, { "a2", "a3", "b1" }, { "a3", "b1" } } },
  } }

-- flink-cep AfterMatchSkipITCase testNoSkipWithOneOrMoreAtBeginning: the same with
-- NO_SKIP -> {a1 a2 a3 b1}, {a2 a3 b1}, {a3 b1}.
rule { name = "skip_no_skip_loop_at_start", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:one_or_more():consecutive():greedy():next("b"):where{ type = "b" },
  examples = {
    { events = seq("a1 a2 a3 b1"), matches = { { "a1", "a2", "a3", "b1" }, { "a2", "a3", "b1" }, { "a3", "b1" } } },
  } }

-- flink-cep AfterMatchSkipITCase testSkipToFirstDiscarding ("example from docs"): (a or c)
-- followedBy (b or c) followedBy c one_or_more greedy followedBy d, SKIP_TO_FIRST[c*];
-- input a b c1 c2 c3 d -> {a b c1 c2 c3 d}, {c1 c2 c3 d}.
rule { name = "skip_to_first_discarding", key = "k", skip = skip_to_first("cs"),
  pattern = begin("a_or_c"):where{ type = one_of{ "a", "c" } }
            :followed_by("b_or_c"):where{ type = one_of{ "b", "c" } }
            :followed_by("cs"):where{ type = "c" }:one_or_more():greedy()
            :followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a b c1 c2 c3 d"), matches = { { "a", "b", "c1", "c2", "c3", "d" }, { "c1", "c2", "c3", "d" } } },
  } }
