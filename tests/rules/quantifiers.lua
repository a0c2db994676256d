-- Golden cases: quantifiers (times(n), times(n, m), times_or_more, one_or_more, optional,
-- consecutive, stop_when, greedy), FlinkCEP semantics. Format, helper and citations:
-- tests/rules/README.md.
--
-- FlinkCEP's default after-match skip strategy is NO_SKIP, vigil's is
-- skip_past_last_event: every rule below that reproduces a FlinkCEP result
-- says skip = "no_skip". FlinkCEP's times(0, n) is times(1, n) made optional; vigil
-- writes it times(1, n):optional(). allowCombinations() has no vigil equivalent, so the
-- FlinkCEP tests that use it are not reproduced.
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

-- flink-cep AfterMatchSkipITCase testNoSkip: "a" times(3) with NO_SKIP, input a1..a6 ->
-- {a1 a2 a3}, {a2 a3 a4}, {a3 a4 a5}, {a4 a5 a6}.
rule { name = "quant_times_no_skip", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:times(3),
  examples = {
    { events = seq("a1 a2 a3 a4 a5 a6"),
      matches = { { "a1", "a2", "a3" }, { "a2", "a3", "a4" }, { "a3", "a4", "a5" }, { "a4", "a5", "a6" } } },
  } }

-- flink-cep NFAITCase testStartWithTimes: a times(2) consecutive, followedBy b; input
-- a1 a2 a3 b -> {a1 a2 b}, {a2 a3 b}.
rule { name = "quant_start_with_times_consecutive", key = "k", skip = "no_skip",
  pattern = begin("middle"):where{ type = "a" }:times(2):consecutive()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("a1@2 a2@3 a3@4 b@6"), matches = { { "a1", "a2", "b" }, { "a2", "a3", "b" } } },
  } }

-- flink-cep NFAITCase testTimesNotStrictWithFollowedByEager: c followedBy a times(2)
-- (relaxed inside the loop) followedBy b; input c a1 a2 a3 b -> {c a1 a2 b}.
rule { name = "quant_times_followed_by_eager", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:times(2)
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c a1@2 a2@4 a3@6 b@7"), matches = { { "c", "a1", "a2", "b" } } },
  } }

-- flink-cep NFAITCase testTimesStrictWithNextAndConsecutive: c next a times(2)
-- consecutive followedBy b; input c a1 f a2 a3 b -> no match (f breaks the a's after c).
rule { name = "quant_times_next_consecutive", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :next("middle"):where{ type = "a" }:times(2):consecutive()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c a1@2 f@3 a2@4 a3@6 b@7"), matches = {} },
  } }

-- flink-cep NFAITCase testTimesStrict (and TimesOrMoreITCase testTimesOrMoreStrict, the
-- same case): c followedByAny a times(2) consecutive followedBy b; input c f a1 f a2 a3 b
-- -> {c a2 a3 b}.
rule { name = "quant_times_any_consecutive", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by_any("middle"):where{ type = "a" }:times(2):consecutive()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f1 a1 f2 a2 a3 b"), matches = { { "c", "a2", "a3", "b" } } },
  } }

-- flink-cep NFAITCase testTimesNonStrictOptional1: c followedBy a times(3) optional
-- followedBy b; input c f b -> {c b}.
rule { name = "quant_times_optional_skipped", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:times(3):optional()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f b@7"), matches = { { "c", "b" } } },
  } }

-- flink-cep NFAITCase testOneOrMoreStrictOptional: c followedByAny a one_or_more
-- consecutive optional followedBy b; input c f a1 f a2 a3 b -> {c a2 a3 b}, {c a1 b},
-- {c a2 b}, {c a3 b}, {c b}.
rule { name = "quant_one_or_more_any_consecutive_optional", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by_any("middle"):where{ type = "a" }:one_or_more():consecutive():optional()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f1 a1 f2 a2 a3 b"),
      matches = { { "c", "a2", "a3", "b" }, { "c", "a1", "b" }, { "c", "a2", "b" }, { "c", "a3", "b" },
                  { "c", "b" } } },
  } }

-- flink-cep NFAITCase testStrictOneOrMore: c followedBy a one_or_more consecutive
-- followedBy b; input c d a1 a2 a3 d a4 b -> {c a1 a2 a3 b}, {c a1 a2 b}, {c a1 b}.
rule { name = "quant_one_or_more_consecutive", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more():consecutive()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c d1 a1 a2 a3 d2 a4 b"),
      matches = { { "c", "a1", "a2", "a3", "b" }, { "c", "a1", "a2", "b" }, { "c", "a1", "b" } } },
  } }

-- flink-cep NFAITCase testSkipTillNextOneOrMore: the same with relaxed contiguity inside
-- the loop -> {c a1 a2 a3 a4 b}, {c a1 a2 a3 b}, {c a1 a2 b}, {c a1 b}.
rule { name = "quant_one_or_more_relaxed", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c d1 a1 a2 a3 d2 a4 b"),
      matches = { { "c", "a1", "a2", "a3", "a4", "b" }, { "c", "a1", "a2", "a3", "b" },
                  { "c", "a1", "a2", "b" }, { "c", "a1", "b" } } },
  } }

-- flink-cep NFAITCase testEndWithOneOrMore: c followedBy a one_or_more; input c a1 a2 a3
-- -> {c a1}, {c a1 a2}, {c a1 a2 a3} (each completed by its last a).
rule { name = "quant_end_with_one_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }:followed_by("middle"):where{ type = "a" }:one_or_more(),
  examples = {
    { events = seq("c a1 a2 a3"), matches = { { "c", "a1" }, { "c", "a1", "a2" }, { "c", "a1", "a2", "a3" } } },
  } }

-- flink-cep NFAITCase testEndWithZeroOrMore: c followedBy a one_or_more optional; input
-- c a1 a2 a3 -> {c}, {c a1}, {c a1 a2}, {c a1 a2 a3}.
rule { name = "quant_end_with_zero_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }:followed_by("middle"):where{ type = "a" }:one_or_more():optional(),
  examples = {
    { events = seq("c a1 a2 a3"),
      matches = { { "c" }, { "c", "a1" }, { "c", "a1", "a2" }, { "c", "a1", "a2", "a3" } } },
  } }

-- flink-cep NFAITCase testEndWithOptional: c followedBy a optional; input c a1 ->
-- {c}, {c a1}.
rule { name = "quant_end_with_optional", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }:followed_by("middle"):where{ type = "a" }:optional(),
  examples = {
    { events = seq("c a1"), matches = { { "c" }, { "c", "a1" } } },
  } }

-- flink-cep NFAITCase testStartWithOneOrMoreStrict: a one_or_more consecutive alone;
-- input c a1 c a2 a3 -> {a1}, {a2 a3}, {a2}, {a3}.
rule { name = "quant_start_with_one_or_more_consecutive", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:one_or_more():consecutive(),
  examples = {
    { events = seq("c1 a1@3 c2@4 a2@5 a3@6"), matches = { { "a1" }, { "a2" }, { "a2", "a3" }, { "a3" } } },
  } }

-- flink-cep UntilConditionITCase testUntilConditionFollowedByOneOrMore: c followedBy
-- a one_or_more until(price == 5) followedBy end(price == 5); input c a1 a2 a(5) a(6)
-- -> {c a1 a2 a5}, {c a1 a5}.
rule { name = "quant_until_one_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more():stop_when{ price = 5 }
            :followed_by("end"):where{ price = 5 },
  examples = {
    { events = seq("c@1 a1@3 a2@4 a5@6 a6@7",
                   { c = { price = 1 }, a1 = { price = 2 }, a2 = { price = 3 }, a5 = { price = 5 }, a6 = { price = 6 } }),
      matches = { { "c", "a1", "a2", "a5" }, { "c", "a1", "a5" } } },
  } }

-- flink-cep UntilConditionITCase testUntilConditionFollowedByOneOrMoreConsecutive: the
-- same loop consecutive -> {c a1 a2 a5}, {c a1 a5}.
rule { name = "quant_until_one_or_more_consecutive", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more():consecutive():stop_when{ price = 5 }
            :followed_by("end"):where{ price = 5 },
  examples = {
    { events = seq("c@1 a1@3 a2@4 a5@7 a6@8",
                   { c = { price = 1 }, a1 = { price = 2 }, a2 = { price = 3 }, a5 = { price = 5 }, a6 = { price = 6 } }),
      matches = { { "c", "a1", "a2", "a5" }, { "c", "a1", "a5" } } },
  } }

-- Flink docs, FlinkCEP "Pattern API / Conditions", stop condition: pattern "(a+ until b)",
-- input "a1" "c" "a2" "b" "a3" -> {a1 a2} {a1} {a2} {a3}; {a1 a2 a3} and {a2 a3} are not
-- returned because of the stop condition.
rule { name = "quant_docs_until", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:one_or_more():stop_when{ type = "b" },
  examples = {
    { events = seq("a1 c a2 b a3"), matches = { { "a1" }, { "a1", "a2" }, { "a2" }, { "a3" } } },
  } }

-- flink-cep TimesOrMoreITCase testTimesOrMoreNotStrictWithFollowedBy: c followedBy a
-- times_or_more(2) followedBy b; input c a1 a2 a3 b -> {c a1 a2 a3 b}, {c a1 a2 b}.
rule { name = "quant_times_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:times_or_more(2)
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c a1@2 a2@4 a3@6 b@7"), matches = { { "c", "a1", "a2", "a3", "b" }, { "c", "a1", "a2", "b" } } },
  } }

-- flink-cep TimesOrMoreITCase testTimesOrMoreNonStrictOptional: c followedBy a
-- times_or_more(2) optional followedBy b; input c f b -> {c b}.
rule { name = "quant_times_or_more_optional_skipped", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:times_or_more(2):optional()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f b@7"), matches = { { "c", "b" } } },
  } }

-- flink-cep TimesRangeITCase testTimesRangeStrict: c followedByAny a times(0, 3)
-- consecutive followedBy b (vigil: times(1, 3):optional()); input c f a1 f a2 a3 b ->
-- {c a2 a3 b}, {c a1 b}, {c a2 b}, {c a3 b}, {c b}.
rule { name = "quant_times_range_consecutive", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by_any("middle"):where{ type = "a" }:times(1, 3):optional():consecutive()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f1 a1 f2 a2 a3 b"),
      matches = { { "c", "a2", "a3", "b" }, { "c", "a1", "b" }, { "c", "a2", "b" }, { "c", "a3", "b" },
                  { "c", "b" } } },
  } }

-- flink-cep TimesRangeITCase testTimesRangeNonStrictOptional1: c followedBy a times(1, 3)
-- optional followedBy b; input c f b -> {c b}.
rule { name = "quant_times_range_optional_skipped", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:times(1, 3):optional()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f b@7"), matches = { { "c", "b" } } },
  } }

-- flink-cep GreedyITCase testGreedyZeroOrMoreWithDummyEventsBeforeQuantifier: c
-- followedBy a one_or_more optional greedy followedBy d; input c dummy d -> {c d}. (vigil
-- accepts greedy() but does not implement it yet, docs/rules.md; here no a comes, so
-- greedy and reluctant agree. The cases where they differ are in pending/.)
rule { name = "quant_greedy_no_loop_event", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more():optional():greedy()
            :followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("c dummy@2 d@5"), matches = { { "c", "d" } } },
  } }
