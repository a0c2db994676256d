-- Golden cases: negation (not_next, not_followed_by between steps, not_followed_by at the
-- end with within = an absence), FlinkCEP semantics. Format, helper and citations:
-- tests/rules/README.md.
--
-- FlinkCEP's default after-match skip strategy is NO_SKIP, vigil's is
-- skip_past_last_event: every rule below that reproduces a FlinkCEP result
-- says skip = "no_skip". The NotPatternITCase tests feed events straight into the NFA in
-- the order listed, some with decreasing timestamps; here the times follow that order
-- (vigil would report an event older than the watermark as late).
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

-- flink-cep NotPatternITCase testNotNext: a notNext b followedByAny c followedBy d;
-- input a1 c1 b1 c2 d -> {a1 c1 d}, {a1 c2 d}.
rule { name = "neg_not_next", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_next("not"):where{ type = "b" }
            :followed_by_any("middle"):where{ type = "c" }:followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 c1 b1 c2 d"), matches = { { "a1", "c1", "d" }, { "a1", "c2", "d" } } },
  } }

-- flink-cep NotPatternITCase testNotNextNoMatches: a notNext b followedBy c followedBy d;
-- input a1 b1 c1 c2 d -> no match.
rule { name = "neg_not_next_no_matches", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_next("not"):where{ type = "b" }
            :followed_by("middle"):where{ type = "c" }:followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 b1 c1 c2 d"), matches = {} },
  } }

-- flink-cep NotPatternITCase testNotFollowedBy: a notFollowedBy b followedByAny c
-- followedBy d; input a1 c1 b1 c2 d -> {a1 c1 d}.
rule { name = "neg_not_followed_by", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_followed_by("not"):where{ type = "b" }
            :followed_by_any("middle"):where{ type = "c" }:followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 c1 b1 c2 d"), matches = { { "a1", "c1", "d" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByBeforeOptional: a notFollowedBy b
-- followedByAny c optional followedBy d; input a1 c1 b1 c2 d -> {a1 c1 d}.
rule { name = "neg_not_followed_by_before_optional", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_followed_by("not"):where{ type = "b" }
            :followed_by_any("middle"):where{ type = "c" }:optional():followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 c1 b1 c2 d"), matches = { { "a1", "c1", "d" } } },
  } }

-- flink-cep NotPatternITCase testIgnoreStateOfTimesWithNotFollowedBy: a notFollowedBy b
-- followedByAny c times(2) optional followedBy d; input a1 d1 e b1 c1 c2 d2 -> {a1 d1}.
rule { name = "neg_ignore_state_of_times", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_followed_by("not"):where{ type = "b" }
            :followed_by_any("middle"):where{ type = "c" }:times(2):optional()
            :followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 d1 e b1 c1 c2 d2"), matches = { { "a1", "d1" } } },
  } }

-- flink-cep NotPatternITCase testTimesWithNotFollowedByAfter: a followedByAny b times(2)
-- notFollowedBy c followedBy d; input a1 d1 e b1 b2 c1 d2 -> no match.
rule { name = "neg_times_not_followed_by_after", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:followed_by_any("middle"):where{ type = "b" }:times(2)
            :not_followed_by("not"):where{ type = "c" }:followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 d1 e b1 b2 c1 d2"), matches = {} },
  } }

-- flink-cep NotPatternITCase testNotFollowedByBeforeOptionalAtTheEnd: a notFollowedBy b
-- followedByAny c optional; input a1 c1 b1 c2 -> {a1 c1}, {a1}. ({a1} completes at a1, so
-- it comes first.)
rule { name = "neg_not_followed_by_before_optional_end", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_followed_by("not"):where{ type = "b" }
            :followed_by_any("end"):where{ type = "c" }:optional(),
  examples = {
    { events = seq("a1 c1 b1 c2"), matches = { { "a1" }, { "a1", "c1" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByWithBranchingAtStart: a notFollowedBy b
-- followedBy c followedBy d; input a1 b1 c1 a2 c2 d -> {a2 c2 d}.
rule { name = "neg_not_followed_by_branching_at_start", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:not_followed_by("not"):where{ type = "b" }
            :followed_by("middle"):where{ type = "c" }:followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("a1 b1 c1 a2 c2 d"), matches = { { "a2", "c2", "d" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByBeforeOneOrMoreEager: a notFollowedBy c
-- followedBy b one_or_more followedBy d; input a1 b1 c1 b4 b5 b6 d1 -> {a1 b1 b4 b5 b6 d1},
-- {a1 b1 b4 b5 d1}, {a1 b1 b4 d1}, {a1 b1 d1}.
rule { name = "neg_not_followed_by_before_one_or_more", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("not_c"):where{ type = "c" }
            :followed_by("bs"):where{ type = "b" }:one_or_more():followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a1@0 b1@1 c1@2 b4@3 b5@4 b6@5 d1@6"),
      matches = { { "a1", "b1", "b4", "b5", "b6", "d1" }, { "a1", "b1", "b4", "b5", "d1" },
                  { "a1", "b1", "b4", "d1" }, { "a1", "b1", "d1" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByAnyBeforeOneOrMoreEager: the same with
-- followedByAny b -> the same four matches.
rule { name = "neg_not_followed_by_before_one_or_more_any", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("not_c"):where{ type = "c" }
            :followed_by_any("bs"):where{ type = "b" }:one_or_more():followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a1@0 b1@1 c1@2 b4@3 b5@4 b6@5 d1@6"),
      matches = { { "a1", "b1", "b4", "b5", "b6", "d1" }, { "a1", "b1", "b4", "b5", "d1" },
                  { "a1", "b1", "b4", "d1" }, { "a1", "b1", "d1" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByBeforeZeroOrMoreEagerSkipTillNext: a
-- notFollowedBy c followedBy b one_or_more optional followedBy d; same input -> the same
-- four matches.
rule { name = "neg_not_followed_by_before_zero_or_more", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("not_c"):where{ type = "c" }
            :followed_by("bs"):where{ type = "b" }:one_or_more():optional():followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a1@0 b1@1 c1@2 b4@3 b5@4 b6@5 d1@6"),
      matches = { { "a1", "b1", "b4", "b5", "b6", "d1" }, { "a1", "b1", "b4", "b5", "d1" },
                  { "a1", "b1", "b4", "d1" }, { "a1", "b1", "d1" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByBeforeZeroOrMoreEagerSkipTillAny: the same
-- with followedByAny b -> the same four matches.
rule { name = "neg_not_followed_by_before_zero_or_more_any", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("not_c"):where{ type = "c" }
            :followed_by_any("bs"):where{ type = "b" }:one_or_more():optional():followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a1@0 b1@1 c1@2 b4@3 b5@4 b6@5 d1@6"),
      matches = { { "a1", "b1", "b4", "b5", "b6", "d1" }, { "a1", "b1", "b4", "b5", "d1" },
                  { "a1", "b1", "b4", "d1" }, { "a1", "b1", "d1" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByWithinFirstAndLastAtEnd: a notFollowedBy b
-- within 3 ms, at the end of the pattern (an absence); input a1@1 b1@2 a2@4 c@5 b2@10
-- a3@11 b3@13 -> {a2}: only a2 sees no b within 3. (Times in seconds here: within "3s".)
-- The alert lists the events matched before the absent step.
rule { name = "neg_absence_within_at_end", key = "k", skip = "no_skip", within = "3s",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("b"):where{ type = "b" },
  examples = {
    { events = seq("a1@1 b1@2 a2@4 c@5 b2@10 a3@11 b3@13"), matches = { { "a2" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowByBeforeTimesWithin: a notFollowedBy b
-- followedBy c times(0, 2) within 3 ms (vigil: times(1, 2):optional(), "3s"); input
-- a1@1 b1@2 a2@10 c1@11 c2@12 a3@20 c3@21 c4@24 -> {a1}, {a2}, {a2 c1}, {a2 c1 c2}, {a3},
-- {a3 c3}.
rule { name = "neg_not_followed_by_before_times_within", key = "k", skip = "no_skip", within = "3s",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("b"):where{ type = "b" }
            :followed_by("c"):where{ type = "c" }:times(1, 2):optional(),
  examples = {
    { events = seq("a1@1 b1@2 a2@10 c1@11 c2@12 a3@20 c3@21 c4@24"),
      matches = { { "a1" }, { "a2" }, { "a2", "c1" }, { "a2", "c1", "c2" }, { "a3" }, { "a3", "c3" } } },
  } }

-- Flink docs, FlinkCEP "Pattern API / Combining Patterns": a pattern sequence can end with
-- notFollowedBy() with a temporal constraint (a followed by no b within 10 s). Three failed
-- logins and no success within 10 s -> an absence alert listing the three failures; the
-- second user logs in successfully in time -> nothing.
rule { name = "neg_docs_absence_logins", key = "user", within = "10s",
  pattern = begin("fail"):where{ type = "fail" }:times(3):not_followed_by("ok"):where{ type = "ok" },
  examples = {
    { events = { { id = "f1", user = "u1", type = "fail", ts = 0 }, { id = "f2", user = "u1", type = "fail", ts = 1 },
                 { id = "f3", user = "u1", type = "fail", ts = 2 }, { id = "g1", user = "u2", type = "fail", ts = 3 },
                 { id = "g2", user = "u2", type = "fail", ts = 4 }, { id = "g3", user = "u2", type = "fail", ts = 5 },
                 { id = "g4", user = "u2", type = "ok", ts = 9 } },
      matches = { { "f1", "f2", "f3" } } },
  } }

-- flink-cep NotPatternITCase testNotFollowedByWithinFirstAndLastAtEnd (an absence at the
-- end) with the after-match skip strategies of the Flink docs, FlinkCEP "After Match Skip
-- Strategy". fail times(2) not followed by ok within 10 s; three fails, no ok: {f1 f2}
-- completes at 10 s, {f2 f3} at 11 s. NO_SKIP keeps both.
rule { name = "neg_absence_no_skip", key = "k", skip = "no_skip", within = "10s",
  pattern = begin("fail"):where{ type = "f" }:times(2):not_followed_by("ok"):where{ type = "ok" },
  examples = {
    { events = seq("f1@0 f2@1 f3@2"), matches = { { "f1", "f2" }, { "f2", "f3" } } },
  } }

-- The same with SKIP_PAST_LAST_EVENT (vigil's default): {f1 f2} discards every partial
-- match that started before its end (f2), {f2 f3} among them.
rule { name = "neg_absence_skip_past_last", key = "k", within = "10s",
  pattern = begin("fail"):where{ type = "f" }:times(2):not_followed_by("ok"):where{ type = "ok" },
  examples = {
    { events = seq("f1@0 f2@1 f3@2"), matches = { { "f1", "f2" } } },
  } }

-- Flink docs, FlinkCEP "Pattern API / Groups of patterns", notNext(): the matching
-- negative event has to directly succeed the previous matching event for the partial
-- match to be discarded. a next b notNext c followedBy d: c right after b discards; c one
-- event later does not.
rule { name = "neg_next_not_next", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" }
            :not_next("not_c"):where{ type = "c" }:followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a b c d"), matches = {} },
    { events = seq("a b x c d"), matches = { { "a", "b", "d" } } },
  } }
