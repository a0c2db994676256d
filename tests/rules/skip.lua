-- Golden cases: the five after-match skip strategies (no_skip, skip_to_next,
-- skip_past_last_event, skip_to_first(step), skip_to_last(step)), FlinkCEP semantics.
-- Format, helper and citations: tests/rules/README.md.
--
-- FlinkCEP's default is NO_SKIP, vigil's is skip_past_last_event: every rule below names
-- its strategy explicitly, except the ones that show vigil's default.
-- With any strategy but no_skip a completed match is held while a partial match that
-- started before it is alive (FlinkCEP NFA.processMatchesAccordingToSkipStrategy); the
-- cases at the end show what releases it.

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
-- "b1 b2 b3 c" (b+ consecutive then next c, as in docs/rules.md and in FlinkCEP's own tests
-- of the table, AfterMatchSkipITCase test*WithOneOrMoreAtBeginning). NO_SKIP: b1 b2 b3 c,
-- b2 b3 c, b3 c.
rule { name = "skip_docs_no_skip", key = "k", skip = "no_skip",
  pattern = begin("b"):where{ type = "b" }:one_or_more():consecutive():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- Same table, SKIP_TO_NEXT: b1 b2 b3 c, b2 b3 c, b3 c (no other match could start at b1).
rule { name = "skip_docs_skip_to_next", key = "k", skip = "skip_to_next",
  pattern = begin("b"):where{ type = "b" }:one_or_more():consecutive():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- Same table, SKIP_PAST_LAST_EVENT: b1 b2 b3 c (all started partial matches discarded).
rule { name = "skip_docs_skip_past_last_event", key = "k", skip = "skip_past_last_event",
  pattern = begin("b"):where{ type = "b" }:one_or_more():consecutive():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" } } },
  } }

-- Same table, SKIP_TO_FIRST[b]: b1 b2 b3 c, b2 b3 c, b3 c (no partial match started
-- before b1, nothing is discarded).
rule { name = "skip_docs_skip_to_first", key = "k", skip = skip_to_first("b"),
  pattern = begin("b"):where{ type = "b" }:one_or_more():consecutive():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- Same table, SKIP_TO_LAST[b]: b1 b2 b3 c, b3 c (b2 b3 c started before b3: discarded).
rule { name = "skip_docs_skip_to_last", key = "k", skip = skip_to_last("b"),
  pattern = begin("b"):where{ type = "b" }:one_or_more():consecutive():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b3", "c" } } },
  } }

-- The same pattern without skip =: vigil's default is skip_past_last_event, not
-- FlinkCEP's NO_SKIP (docs/rules.md) -> b1 b2 b3 c only.
rule { name = "skip_docs_vigil_default", key = "k",
  pattern = begin("b"):where{ type = "b" }:one_or_more():consecutive():next("c"):where{ type = "c" },
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

-- Held matches. With any strategy but no_skip, FlinkCEP (NFA
-- processMatchesAccordingToSkipStrategy) keeps a completed match while a partial match that
-- started before it is alive, then emits completed matches earliest start first, each
-- pruning the others; NFA.advanceTime ends partial matches by `within` (which may free held
-- ones). FlinkCEP's test of it is flink/skip_to_first_before_other_completed.lua; the cases
-- below have none of their own: their results are derived from those two methods (the
-- release by max_runs eviction, vigil's own, is in tests/unit/test_engine.c).

-- a followed_by b (same x as the a) next c. a2 b3 c4 completes while a1 still waits for its
-- b: held. 1: nothing comes (no within: a1's run lives on). 2: b5 takes a1's run on, d6 breaks
-- next(c): the run dies, {a2 b3 c4} goes. 3: a1's run completes first-started, {a1 b5 c6} is
-- emitted and prunes {a2 b3 c4} (started before c6).
local X = { a1 = { x = 1 }, a2 = { x = 2 }, b3 = { x = 2 }, b5 = { x = 1 } }
rule { name = "skip_held_until_blocker_ends", key = "k", skip = "skip_past_last_event",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b", x = ref("a", "x") }
            :next("c"):where{ type = "c" },
  examples = {
    { events = seq("a1 a2 b3 c4", X), matches = {} },
    { events = seq("a1 a2 b3 c4 b5 d6", X), matches = { { "a2", "b3", "c4" } } },
    { events = seq("a1 a2 b3 c4 b5 c6", X), matches = { { "a1", "b5", "c6" } } },
  } }

-- The same with within 10 s: a1's run ends when the watermark passes a1 + 10 s. 1: at the
-- end of input. 2: b5 at 12 s is past it, {a2 b3 c4} goes before b5 is matched. 3: b5 and c6
-- at 10 s are inside it: as example 3 above.
rule { name = "skip_held_until_within", key = "k", skip = "skip_past_last_event", within = "10s",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b", x = ref("a", "x") }
            :next("c"):where{ type = "c" },
  examples = {
    { events = seq("a1 a2 b3 c4", X), matches = { { "a2", "b3", "c4" } } },
    { events = seq("a1 a2 b3 c4 b5@12 c6@13", X), matches = { { "a2", "b3", "c4" } } },
    { events = seq("a1 a2 b3 c4 b5@10 c6@10", X), matches = { { "a1", "b5", "c6" } } },
  } }

-- NO_SKIP holds nothing: every match at once, in completion order.
rule { name = "skip_held_not_with_no_skip", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b", x = ref("a", "x") }
            :next("c"):where{ type = "c" },
  examples = {
    { events = seq("a1 a2 b3 c4", X), matches = { { "a2", "b3", "c4" } } },
    { events = seq("a1 a2 b3 c4 b5 c6", X), matches = { { "a2", "b3", "c4" }, { "a1", "b5", "c6" } } },
  } }

-- docs/rules.md §6.5: a followed_by b with b.x = a.x on a1(x=1) a2(x=2) b3(x=2) b4(x=1).
-- Default skip: {a2 b3} waits for a1's run, {a1 b4} comes first and prunes it. skip_to_next
-- prunes only matches that started at a1: both, earliest start first.
local Y = { a1 = { x = 1 }, a2 = { x = 2 }, b3 = { x = 2 }, b4 = { x = 1 } }
rule { name = "skip_held_docs_default", key = "k",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b", x = ref("a", "x") },
  examples = {
    { events = seq("a1 a2 b3 b4", Y), matches = { { "a1", "b4" } } },
  } }

rule { name = "skip_held_docs_skip_to_next", key = "k", skip = "skip_to_next",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b", x = ref("a", "x") },
  examples = {
    { events = seq("a1 a2 b3 b4", Y), matches = { { "a1", "b4" }, { "a2", "b3" } } },
  } }

-- The table's b+ c with a relaxed loop (no consecutive()): after c the runs of b1 and b2
-- still wait in the loop for more b's, so with SKIP_TO_FIRST[b] {b2 b3 c} and {b3 c} are held
-- behind b1's run: for good without within, until the end of input with it.
rule { name = "skip_held_relaxed_loop", key = "k", skip = skip_to_first("b"),
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" } } },
  } }

rule { name = "skip_held_relaxed_loop_within", key = "k", skip = skip_to_first("b"), within = "1m",
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1 b2 b3 c"), matches = { { "b1", "b2", "b3", "c" }, { "b2", "b3", "c" }, { "b3", "c" } } },
  } }
