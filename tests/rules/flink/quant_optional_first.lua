-- A FlinkCEP behaviour vigil refused until issue 17 (engine/src/ruleset.c rejected it, now
-- engine/src/nfa.c, vnfa_feed, starts runs past optional first steps); kept as its own
-- regression case. What vigil gave before: "vigil then".
--
-- An optional first step. FlinkCEP's start state has a PROCEED edge past an optional
-- step, so a match may begin at the step after it; a run that has taken nothing does not
-- wait there (the start state follows no IGNORE edge), so it begins only with an event
-- that step takes.
--
-- FlinkCEP (the tests cited below): c,b|b and a1,a2,a3|a1,a2|a1|a2,a3|a2|a3
-- vigil then:                      compile error "the first step 'start' cannot be optional"

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

-- flink-cep NFAITCase testStartWithOptional: c optional followedBy b; input c b ->
-- {c b}, {b}. With x between them, b still completes both; with the default skip
-- (skip_past_last_event) {c b} prunes {b}, which starts at b.
rule { name = "quant_optional_first", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "c" }:optional():followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c@1 b@6"), matches = { { "c", "b" }, { "b" } } },
    { events = seq("c x b"), matches = { { "c", "b" }, { "b" } } },
    { events = seq("x b1 c b2"), matches = { { "b1" }, { "c", "b2" }, { "b2" } } },
  } }
rule { name = "quant_optional_first_skip", key = "k",
  pattern = begin("start"):where{ type = "c" }:optional():followed_by("end1"):where{ type = "b" },
  examples = {
    { events = seq("c x b"), matches = { { "c", "b" } } },
    { events = seq("b1 c b2"), matches = { { "b1" }, { "c", "b2" } } },
  } }

-- flink-cep NFAITCase testStartAndEndWithZeroOrMore: a one_or_more optional, the only
-- step; input c a1 a2 a3 d d d -> {a1 a2 a3}, {a1 a2}, {a1}, {a2 a3}, {a2}, {a3} (never an
-- empty match), in vigil's emission order.
rule { name = "quant_optional_first_zero_or_more", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "a" }:one_or_more():optional(),
  examples = {
    { events = seq("c a1 a2 a3 d1 d2 d3"),
      matches = { { "a1" }, { "a1", "a2" }, { "a2" }, { "a1", "a2", "a3" }, { "a2", "a3" }, { "a3" } } },
  } }
