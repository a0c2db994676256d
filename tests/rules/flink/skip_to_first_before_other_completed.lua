-- A FlinkCEP behaviour vigil got wrong until 2026-11-21 (fixed in engine/src/nfa.c,
-- release(): completed matches are held); kept as its own regression case. What vigil
-- gave before: "vigil then".
--
-- Skip strategies applied in completion order, not start order. FlinkCEP (NFA
-- processMatchesAccordingToSkipStrategy) holds a completed match while a partial match that
-- started earlier is still alive, and emits completed matches by start, each pruning the
-- others; vigil emitted a match when it completed and pruned the earlier partial match,
-- which then could never complete.
--
-- FlinkCEP (the test cited below): a1,c1,b2|a2,c2,b1
-- vigil then:                      a2,c2,b1

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

-- flink-cep AfterMatchSkipITCase testSkipBeforeOtherAlreadyCompleted: a followedBy c
-- followedBy b whose price equals the a's (an iterative condition; vigil: ref()),
-- SKIP_TO_FIRST[c]; input a1(0) c1 a2(1) c2 b1(1) b2(0) -> {a1 c1 b2}, {a2 c2 b1}.
rule { name = "skip_to_first_before_other_completed", key = "k", skip = skip_to_first("c"),
  pattern = begin("a"):where{ type = "a" }:followed_by("c"):where{ type = "c" }
            :followed_by("b"):where{ type = "b", price = ref("a", "price") },
  examples = {
    { events = seq("a1 c1 a2 c2 b1 b2", { a1 = { price = 0 }, c1 = { price = 0 }, a2 = { price = 1 },
                                         c2 = { price = 0 }, b1 = { price = 1 }, b2 = { price = 0 } }),
      matches = { { "a1", "c1", "b2" }, { "a2", "c2", "b1" } } },
  } }
