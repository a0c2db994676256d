-- A FlinkCEP behaviour vigil got wrong until 2026-11-21 (fixed in engine/src/nfa.c,
-- advance()); kept as its own regression case. What vigil gave before: "vigil then".
--
-- Skipping an optional step whose condition the event meets. FlinkCEP keeps a branch that
-- skipped the optional step and waits at the following step, ignoring events that only
-- the optional step takes; vigil drops the run that has not taken the optional step as
-- soon as an event meets that step's condition, so the match without it is missing.
--
-- FlinkCEP (the test cited below): c,a1,a2,a5|c,a1,a5|c,a5
-- vigil then:                      c,a1,a2,a5|c,a1,a5

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

-- flink-cep UntilConditionITCase testUntilConditionFollowedByZeroOrMore: c followedBy a
-- one_or_more optional until(price == 5) followedBy end(price == 5); input c a1 a2 a(5)
-- a(6) -> {c a1 a2 a5}, {c a1 a5}, {c a5}.
rule { name = "quant_until_zero_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more():optional():stop_when{ price = 5 }
            :followed_by("end"):where{ price = 5 },
  examples = {
    { events = seq("c@1 a1@3 a2@4 a5@6 a6@7",
                   { c = { price = 1 }, a1 = { price = 2 }, a2 = { price = 3 }, a5 = { price = 5 }, a6 = { price = 6 } }),
      matches = { { "c", "a1", "a2", "a5" }, { "c", "a1", "a5" }, { "c", "a5" } } },
  } }
