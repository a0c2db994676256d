-- Golden cases: event time. Out-of-order input with max_out_of_orderness (events held and
-- matched in event-time order once the watermark passes them), late events (older than
-- the watermark minus allowed_lateness: reported, never matched, listed in `late`) and
-- absences decided by the watermark. Format, helper and citations: tests/rules/README.md.
--
-- Flink docs, FlinkCEP "Time in CEP library / Handling Lateness in Event Time": an
-- incoming element is put in a buffer sorted by timestamp, and when a watermark arrives
-- the elements with smaller timestamps are processed, so they are processed in event-time
-- order; elements whose timestamp is smaller than the last seen watermark are late and not
-- further processed. vigil's watermark is the highest event time seen minus
-- max_out_of_orderness (0 by default: process on arrival), and allowed_lateness widens
-- what is still accepted (DESIGN.md §3 "Time").

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

-- "Handling Lateness in Event Time": elements are sorted by timestamp before matching.
-- a next b; b (time 2) arrives before a (time 1): with max_out_of_orderness = 5 s both are
-- held and matched as a, b -> {a b}. Without it, a is late (older than the watermark 2).
rule { name = "time_reordered_next", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = seq("b@2 a@1"), max_out_of_orderness = "5s", matches = { { "a", "b" } }, late = {} },
    { events = seq("b@2 a@1"), matches = {}, late = { "a" } },
  } }

-- Same section: strict contiguity is judged in event-time order, not arrival order. a
-- next b; arrival a@1 c@3 b@2 -> in event time a b c -> {a b}.
rule { name = "time_reordered_contiguity", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = seq("a@1 c@3 b@2"), max_out_of_orderness = "5s", matches = { { "a", "b" } } },
  } }

-- Same section: late elements are not further processed. a followedBy b, no
-- out-of-orderness: b1 (time 3) arrives after a (time 5) -> late, not matched; b2 matches.
rule { name = "time_late_dropped", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = seq("a@5 b1@3 b2@6"), matches = { { "a", "b2" } }, late = { "b1" } },
  } }

-- Same section, with a bound: max_out_of_orderness = 2 s. x1@10 z@12 y1@11 -> y1 is within
-- the bound (watermark 10) and is matched before z: {x1 y1}; w@5 and v@9 are older than the
-- watermark (10) -> late.
rule { name = "time_ooo_bound", key = "k", skip = "no_skip",
  pattern = begin("x"):where{ type = "x" }:next("y"):where{ type = "y" },
  examples = {
    { events = seq("x1@10 z@12 y1@11 w@5 v@9"), max_out_of_orderness = "2s",
      matches = { { "x1", "y1" } }, late = { "w", "v" } },
  } }

-- Same section plus vigil's allowed_lateness (DESIGN.md §3): an event up to 5 s behind the
-- watermark is still accepted (matched on arrival), an older one is late. One-step pattern,
-- so the order of processing does not matter: a10, a7 match; a2 is late.
rule { name = "time_allowed_lateness", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" },
  examples = {
    { events = seq("a10@10 a7@7 a2@2"), allowed_lateness = "5s", matches = { { "a10" }, { "a7" } }, late = { "a2" } },
    { events = seq("a10@10 a7@7 a2@2"), matches = { { "a10" } }, late = { "a7", "a2" } },
  } }

-- Same section and flink-cep NotPatternITCase testNotFollowedByWithinFirstAndLastAtEnd
-- (an absence at the end of the pattern): a notFollowedBy b within 10 s. Arrival a@0 x@12
-- b@8. With max_out_of_orderness = 5 s the events are matched as a, b, x: b comes within
-- 10 s of a -> no alert. Without it, x@12 moves the watermark past a + 10 s, the absence
-- fires, and b is late.
rule { name = "time_ooo_absence", key = "k", skip = "no_skip", within = "10s",
  pattern = begin("a"):where{ type = "a" }:not_followed_by("b"):where{ type = "b" },
  examples = {
    { events = seq("a@0 x@12 b@8"), max_out_of_orderness = "5s", matches = {}, late = {} },
    { events = seq("a@0 x@12 b@8"), matches = { { "a" } }, late = { "b" } },
  } }

-- Same section: held events are matched when the watermark passes them -- at the latest
-- at the end of the input. a followedBy b one_or_more, NO_SKIP, max_out_of_orderness 60 s,
-- arrival b2@3 a@1 b1@2: matched as a b1 b2 -> {a b1}, {a b1 b2}.
rule { name = "time_ooo_loop", key = "k", skip = "no_skip",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" }:one_or_more(),
  examples = {
    { events = seq("b2@3 a@1 b1@2"), max_out_of_orderness = "60s", matches = { { "a", "b1" }, { "a", "b1", "b2" } } },
  } }

-- Same section: within is judged on event times, whatever the arrival order. a followedBy
-- b within 5 s, max_out_of_orderness 10 s: b1@7 arrives first, then a2@3 and a1@1 ->
-- in event time a1 a2 b1: a1 is 6 s before b1 (too late), a2 is 4 s before -> {a2 b1}.
rule { name = "time_ooo_within", key = "k", skip = "no_skip", within = "5s",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = seq("b1@7 a2@3 a1@1"), max_out_of_orderness = "10s", matches = { { "a2", "b1" } } },
  } }
