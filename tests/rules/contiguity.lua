-- Golden cases: contiguity (next / followed_by / followed_by_any), FlinkCEP
-- semantics. Format, helper and citations: tests/rules/README.md.
--
-- FlinkCEP's default after-match skip strategy is NO_SKIP, vigil's is
-- skip_past_last_event: every rule below that reproduces a FlinkCEP result
-- says skip = "no_skip".

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

-- flink-cep NFAITCase testStrictContinuityWithResults: "a" next "b", input a(3) b(5) -> {a b}.
rule { name = "cont_strict_with_results", key = "k", skip = "no_skip",
  pattern = begin("middle"):where{ type = "a" }:next("end"):where{ type = "b" },
  examples = {
    { events = seq("a1@3 b1@5"), matches = { { "a1", "b1" } } },
  } }

-- flink-cep NFAITCase testStrictContinuityNoResults: "a" next "b", input a c b -> no match.
rule { name = "cont_strict_no_results", key = "k", skip = "no_skip",
  pattern = begin("middle"):where{ type = "a" }:next("end"):where{ type = "b" },
  examples = {
    { events = seq("a1@3 c1@4 b1@5"), matches = {} },
  } }

-- Flink docs, FlinkCEP "Pattern API / Combining Patterns": pattern "a b", input "a", "c",
-- "b1", "b2". Strict contiguity (next): {} (no match), "c" after "a" discards "a".
rule { name = "cont_docs_a_b_strict", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = seq("a c b1 b2"), matches = {} },
  } }

-- Same section: relaxed contiguity (followedBy): {a b1} -- skip non-matching events till
-- the next matching one.
rule { name = "cont_docs_a_b_relaxed", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = seq("a c b1 b2"), matches = { { "a", "b1" } } },
  } }

-- Same section: non-deterministic relaxed contiguity (followedByAny): {a b1}, {a b2}.
rule { name = "cont_docs_a_b_any", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by_any("b"):where{ type = "b" },
  examples = {
    { events = seq("a c b1 b2"), matches = { { "a", "b1" }, { "a", "b2" } } },
  } }

-- flink-cep NFAITCase testNoConditionNFA: begin("start").followedBy("end") without
-- conditions, input a b c d e -> {a b}, {b c}, {c d}, {d e}.
rule { name = "cont_no_condition_followed_by", key = "k", skip = "no_skip",
  pattern = begin("start"):followed_by("end"),
  examples = {
    { events = seq("a b c d e"), matches = { { "a", "b" }, { "b", "c" }, { "c", "d" }, { "d", "e" } } },
  } }

-- flink-cep NFAITCase testAnyWithNoConditionNFA: begin("start").followedByAny("end"),
-- input a b c d e -> all ten ordered pairs. Matches completed by one event come out
-- earliest first event first (docs/rules.md).
rule { name = "cont_no_condition_followed_by_any", key = "k", skip = "no_skip",
  pattern = begin("start"):followed_by_any("end"),
  examples = {
    { events = seq("a b c d e"),
      matches = { { "a", "b" },
                  { "a", "c" }, { "b", "c" },
                  { "a", "d" }, { "b", "d" }, { "c", "d" },
                  { "a", "e" }, { "b", "e" }, { "c", "e" }, { "d", "e" } } },
  } }

-- flink-cep NFAITCase testSimplePatternNFA: start followedBy middle (a SubEvent with
-- volume > 5) followedBy end; the second "start" has no middle after it -> {start middle end}.
rule { name = "cont_simple_pattern", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "start" }
            :followed_by("middle"):where{ volume = gt(5) }
            :followed_by("end"):where{ type = "end" },
  examples = {
    { events = seq("start1@1 foobar@2 barfoo@3 middle@3 start2@4 end@5",
                   { start1 = { type = "start" }, start2 = { type = "start" },
                     barfoo = { volume = 5 }, middle = { volume = 10 } }),
      matches = { { "start1", "middle", "end" } } },
  } }

-- flink-cep NFAITCase testBranchingPattern: start, then followedByAny twice and
-- followedByAny end: every middle-first (volume > 5) x middle-second ("next-one") pair.
rule { name = "cont_branching_any", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "start" }
            :followed_by_any("middle_first"):where{ volume = gt(5) }
            :followed_by_any("middle_second"):where{ type = "next" }
            :followed_by_any("end"):where{ type = "end" },
  examples = {
    { events = seq("start@1 foo1@3 foo2@4 foo3@5 next1@6 next2@7 end@8",
                   { foo1 = { volume = 10 }, foo2 = { volume = 10 }, foo3 = { volume = 10 },
                     next1 = { volume = 2 }, next2 = { volume = 2 } }),
      matches = { { "start", "foo1", "next1", "end" }, { "start", "foo2", "next1", "end" },
                  { "start", "foo3", "next1", "end" }, { "start", "foo1", "next2", "end" },
                  { "start", "foo2", "next2", "end" }, { "start", "foo3", "next2", "end" } } },
  } }

-- flink-cep NFAITCase testBranchingPatternSkipTillNext: the same with followedBy,
-- followedBy, followedByAny -> only {start foo1 next1 end}.
rule { name = "cont_branching_skip_till_next", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "start" }
            :followed_by("middle_first"):where{ volume = gt(5) }
            :followed_by("middle_second"):where{ type = "next" }
            :followed_by_any("end"):where{ type = "end" },
  examples = {
    { events = seq("start@1 foo1@3 foo2@4 foo3@5 next1@6 next2@7 end@8",
                   { foo1 = { volume = 10 }, foo2 = { volume = 10 }, foo3 = { volume = 10 },
                     next1 = { volume = 2 }, next2 = { volume = 2 } }),
      matches = { { "start", "foo1", "next1", "end" } } },
  } }

-- flink-cep NFAITCase testBranchingPatternMixedFollowedBy: followedByAny, followedBy,
-- followedByAny -> one match per middle-first, each with the first "next-one".
rule { name = "cont_branching_mixed", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "start" }
            :followed_by_any("middle_first"):where{ volume = gt(5) }
            :followed_by("middle_second"):where{ type = "next" }
            :followed_by_any("end"):where{ type = "end" },
  examples = {
    { events = seq("start@1 foo1@3 foo2@4 foo3@5 next1@6 next2@7 end@8",
                   { foo1 = { volume = 10 }, foo2 = { volume = 10 }, foo3 = { volume = 10 },
                     next1 = { volume = 2 }, next2 = { volume = 2 } }),
      matches = { { "start", "foo1", "next1", "end" }, { "start", "foo2", "next1", "end" },
                  { "start", "foo3", "next1", "end" } } },
  } }

-- Flink docs, FlinkCEP "Pattern API / Contiguity within looping patterns": "a b+ c", a
-- followed by any (non-deterministic relaxed) sequence of b's followed by c, input "a",
-- "b1", "d1", "b2", "d2", "b3" "c". Strict contiguity inside the loop (consecutive()):
-- {a b1 c}, {a b2 c}, {a b3 c} -- there are no adjacent b's.
rule { name = "cont_docs_loop_strict", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }
            :followed_by_any("b"):where{ type = "b" }:one_or_more():consecutive()
            :followed_by("c"):where{ type = "c" },
  examples = {
    { events = seq("a b1 d1 b2 d2 b3 c"), matches = { { "a", "b1", "c" }, { "a", "b2", "c" }, { "a", "b3", "c" } } },
  } }

-- Same section, relaxed contiguity inside the loop (the default for looping patterns):
-- {a b1 c}, {a b1 b2 c}, {a b1 b2 b3 c}, {a b2 c}, {a b2 b3 c}, {a b3 c} -- d's are ignored.
-- (The third variant, allowCombinations(), has no vigil equivalent.)
rule { name = "cont_docs_loop_relaxed", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }
            :followed_by_any("b"):where{ type = "b" }:one_or_more()
            :followed_by("c"):where{ type = "c" },
  examples = {
    { events = seq("a b1 d1 b2 d2 b3 c"),
      matches = { { "a", "b1", "b2", "b3", "c" }, { "a", "b1", "b2", "c" }, { "a", "b2", "b3", "c" },
                  { "a", "b1", "c" }, { "a", "b2", "c" }, { "a", "b3", "c" } } },
  } }

-- flink-cep NFAITCase testNoConditionNFA again, with vigil's default skip strategy
-- (skip_past_last_event, not FlinkCEP's): after {a b} no run that started at or before b
-- survives, so the stream is cut into disjoint pairs: {a b}, {c d}.
rule { name = "cont_no_condition_default_skip", key = "k",
  pattern = begin("start"):followed_by("end"),
  examples = {
    { events = seq("a b c d e"), matches = { { "a", "b" }, { "c", "d" } } },
  } }
