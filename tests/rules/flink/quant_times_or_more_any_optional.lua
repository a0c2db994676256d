-- A FlinkCEP behaviour vigil got wrong until 2026-11-21 (fixed in engine/src/nfa.c,
-- advance()); kept as its own regression case. What vigil gave before: "vigil then".
--
-- An optional loop below its minimum. FlinkCEP: times(n)/times_or_more(n) with optional()
-- matches either no event or at least n; vigil lets a run that took fewer than n events of
-- the loop (here one) go on to the next step, which adds matches with a single loop event.
--
-- FlinkCEP (the test cited below): c,a1,a2,a3,b|c,a1,a2,b|c,a2,a3,b|c,b
-- vigil then:                      c,a1,a2,a3,b|c,a1,a2,b|c,a2,a3,b|c,a1,b|c,a2,b|c,a3,b|c,b

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

-- flink-cep TimesOrMoreITCase testTimesOrMoreNonStrictOptional3: c followedByAny a
-- times_or_more(2) optional followedBy b; input c f a1 f a2 a3 b -> {c a1 a2 a3 b},
-- {c a1 a2 b}, {c a2 a3 b}, {c b}.
rule { name = "quant_times_or_more_any_optional", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by_any("middle"):where{ type = "a" }:times_or_more(2):optional()
            :followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c f1 a1 f2 a2 a3 b"),
      matches = { { "c", "a1", "a2", "a3", "b" }, { "c", "a1", "a2", "b" }, { "c", "a2", "a3", "b" },
                  { "c", "b" } } },
  } }
