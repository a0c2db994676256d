-- A FlinkCEP behaviour vigil got wrong until 2026-11-21 (fixed in engine/src/nfa.c,
-- advance()); kept as its own regression case. What vigil gave before: "vigil then".
--
-- greedy() has no effect yet (docs/rules.md "Not yet"). FlinkCEP's greedy loop takes
-- every event it can, so only the longest match is emitted; vigil emits the shorter ones too.
--
-- FlinkCEP (the test cited below): c,a1,a2,a3,d
-- vigil then:                      c,a1,a2,a3,d|c,a1,a2,d|c,a1,d

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

-- flink-cep GreedyITCase testGreedyZeroOrMore: c followedBy a one_or_more optional greedy
-- followedBy d; input c a1 a2 a3 d -> {c a1 a2 a3 d} only.
rule { name = "quant_greedy_zero_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }
            :followed_by("middle"):where{ type = "a" }:one_or_more():optional():greedy()
            :followed_by("end"):where{ type = "d" },
  examples = {
    { events = seq("c a1 a2 a3 d"), matches = { { "c", "a1", "a2", "a3", "d" } } },
  } }
