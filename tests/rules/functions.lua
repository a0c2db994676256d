-- Golden cases: Lua function predicates, `:where(function(e, m) ... end)` (DESIGN.md §4),
-- FlinkCEP's IterativeCondition (Flink docs, "FlinkCEP - Pattern API", "Conditions":
-- "Iterative Conditions" — ctx.getEventsForPattern(name) is m.name here: the events the
-- partial match has accepted for that step so far). Format, helper and citations:
-- tests/rules/README.md.

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

-- Flink docs "Iterative Conditions": "middle" accepts events whose name starts with "foo" while
-- the sum of the prices of the events it accepted so far plus this one stays under 5.0.
-- start s1; f1 (1.0), f2 (2.0), f3 (3.0), then end e: middle takes f1 and f2 (sum 3.0); f3
-- would make 6.0, so that run ignores it. no_skip, relaxed contiguity within the loop
-- (skip-till-next-match): the run {s1 f1} cannot ignore f2 (it can take it), so it goes on
-- only as "waiting for end" and never takes f3 (sum 4.0) - as in the docs' "a b+ c" table,
-- where relaxed gives {a b1 c} and {a b1 b2 c} but not {a b1 b3 c}.
local function under_five(e, m)
  if e.name:sub(1, 3) ~= "foo" then return false end
  local sum = e.price
  for _, x in ipairs(m.middle) do sum = sum + x.price end
  return sum < 5.0
end
rule { name = "fn_iterative_sum", key = "k", skip = "no_skip",
  pattern = begin("start"):where{ type = "s" }
            :followed_by("middle"):where{ type = "f" }:where(under_five):one_or_more()
            :followed_by("end"):where{ type = "e" },
  examples = {
    { events = seq("s1 f1 f2 f3 e1", { f1 = { name = "foo1", price = 1.0 }, f2 = { name = "foo2", price = 2.0 },
                                        f3 = { name = "foo3", price = 3.0 } }),
      matches = { { "s1", "f1", "f2", "e1" }, { "s1", "f1", "e1" } } },
    -- a name that does not start with "foo" is never taken
    { events = seq("s1 f1 e1", { f1 = { name = "bar", price = 1.0 } }), alerts = 0 },
  } }

-- A condition across steps that where{} cannot say: a transaction from another country than
-- the login, at least 10 times the login's usual amount (a field of the login event).
rule { name = "fn_cross_step", key = "k",
  pattern = begin("login"):where{ type = "login" }
            :followed_by("tx"):where{ type = "tx" }
            :where(function(e, m)
              local l = m.login[1]
              return e.country ~= l.country and e.amount >= 10 * l.usual
            end),
  within = "1h",
  examples = {
    { events = seq("login1 tx1 tx2 tx3", { login1 = { country = "FR", usual = 20 },
                                           tx1 = { country = "FR", amount = 500 },
                                           tx2 = { country = "US", amount = 150 },
                                           tx3 = { country = "US", amount = 250 } }),
      matches = { { "login1", "tx3" } } },
  } }

-- or_where(function): FlinkCEP folds where/or_where left to right: (type = a) or f(e).
rule { name = "fn_or_where", key = "k", skip = "no_skip",
  pattern = begin("x"):where{ type = "a" }:or_where(function(e) return (e.score or 0) > 90 end),
  examples = {
    { events = seq("a1 b1 b2 c1", { b1 = { score = 95 }, b2 = { score = 10 } }),
      matches = { { "a1" }, { "b1" } } },
  } }
