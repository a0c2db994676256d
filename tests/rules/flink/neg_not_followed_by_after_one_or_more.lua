-- A FlinkCEP behaviour vigil got wrong until 2026-11-21 (fixed in engine/src/nfa.c,
-- advance()); kept as its own regression case. What vigil gave before: "vigil then".
--
-- A negation after a looping step. FlinkCEP checks a not_next / not_followed_by that follows
-- a looping step against the events after the loop's events, from its first one on: a
-- guard event kills the partial match even if the loop could take more events. vigil
-- checks the guard only once the loop has reached its minimum, and a run that takes one
-- more loop event after the guard event starts un-negated, so the guard is forgotten.
--
-- FlinkCEP (the test cited below): (none)
-- vigil then:                      a1,b1,b2,b3,b4,b5,b6,d1|a1,b1,b2,b3,b4,b5,d1|a1,b1,b2,b3,b4,d1

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

-- flink-cep NotPatternITCase testNotFollowedByNextAfterOneOrMoreEager: a followedBy b
-- one_or_more notFollowedBy c followedBy d; input a1 b1 b2 b3 c1 b4 b5 b6 d1 -> no match.
rule { name = "neg_not_followed_by_after_one_or_more", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("bs"):where{ type = "b" }:one_or_more()
            :not_followed_by("not_c"):where{ type = "c" }:followed_by("d"):where{ type = "d" },
  examples = {
    { events = seq("a1@0 b1@1 b2@2 b3@3 c1@4 b4@5 b5@6 b6@7 d1@8"), matches = {} },
  } }
