-- Golden cases: within (time constraints), FlinkCEP semantics: a match needs
-- last.ts - first.ts < within; a partial match that can no longer meet it is discarded.
-- Format, helper and citations: tests/rules/README.md. Times are epoch seconds; the
-- FlinkCEP tests use milliseconds, read here as seconds ("10 ms" -> "10s").
--
-- FlinkCEP's default after-match skip strategy is NO_SKIP, vigil's is
-- skip_past_last_event: every rule below that reproduces a FlinkCEP result
-- says skip = "no_skip".

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

-- flink-cep NFAITCase testSimplePatternWithTimeWindowNFA: start followedBy middle
-- followedBy end within 10; input start1@1 start2@2 middle@3 foobar@4 end1@11 end2@13 ->
-- {start2 middle end1} only: end1 is 10 after start1 (not < 10), end2 is 11 after start2.
rule { name = "within_time_window", key = "k", skip = "no_skip", within = "10s",
  pattern = begin("start"):where{ type = "start" }:followed_by("middle"):where{ type = "middle" }
            :followed_by("end"):where{ type = "end" },
  examples = {
    { events = seq("start1@1 start2@2 middle@3 foobar@4 end1@11 end2@13"),
      matches = { { "start2", "middle", "end1" } } },
  } }

-- flink-cep NFAITCase testSimplePatternWithTimeoutHandling: the same input with
-- followedByAny between the steps; the test asserts exactly one match (and four timed-out
-- partial matches, which vigil does not emit): {start2 middle end1}.
rule { name = "within_timeout_any", key = "k", skip = "no_skip", within = "10s",
  pattern = begin("start"):where{ type = "start" }:followed_by_any("middle"):where{ type = "middle" }
            :followed_by_any("end"):where{ type = "end" },
  examples = {
    { events = seq("start1@1 start2@2 middle@3 foobar@4 end1@11 end2@13"),
      matches = { { "start2", "middle", "end1" } } },
  } }

-- Flink docs, FlinkCEP "Pattern API / Combining Patterns" (temporal constraint,
-- pattern.within()) and the within(time) entry of the "Groups of patterns" table: an event
-- sequence exceeding the time is discarded. a next b within 5 s: 5 s apart is too late,
-- 4 s is in time.
rule { name = "within_next_boundary", key = "k", skip = "no_skip", within = "5s",
  pattern = begin("a"):where{ type = "a" }:next("b"):where{ type = "b" },
  examples = {
    { events = seq("a1@0 b1@5"), matches = {} },
    { events = seq("a1@0 b1@4"), matches = { { "a1", "b1" } } },
    { events = seq("a1@0 b1@4 a2@10 b2@15 a3@20 b3@24"), matches = { { "a1", "b1" }, { "a3", "b3" } } },
  } }

-- Same sections: within bounds the whole match, not the gap between two steps. a
-- followedBy b one_or_more followedBy c within 10 s: the loop may go on only while the
-- whole sequence stays under 10 s after a.
rule { name = "within_loop", key = "k", skip = "no_skip", within = "10s",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" }:one_or_more()
            :followed_by("c"):where{ type = "c" },
  examples = {
    { events = seq("a@0 b1@3 b2@6 b3@9 c@10"), matches = {} },
    { events = seq("a@0 b1@3 b2@6 c@9 b3@9"), matches = { { "a", "b1", "b2", "c" }, { "a", "b1", "c" } } },
  } }

-- Flink docs, FlinkCEP "After Match Skip Strategy" with a time constraint: under
-- SKIP_PAST_LAST_EVENT (vigil's default) the runs started before a match's last event are
-- discarded; a run that expires is discarded as well, so a3 pairs with b only if b comes
-- within 10 s of a3. a followedBy b within 10 s; input a1@0 a2@1 b1@2 a3@3 b2@20.
rule { name = "within_skip_past_last", key = "k", within = "10s",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" },
  examples = {
    { events = seq("a1@0 a2@1 b1@2 a3@3 b2@20"), matches = { { "a1", "b1" } } },
    { events = seq("a1@0 a2@1 b1@2 a3@3 b2@12"), matches = { { "a1", "b1" }, { "a3", "b2" } } },
  } }

-- Flink docs, FlinkCEP "After Match Skip Strategy" (SKIP_TO_NEXT: discard the partial
-- matches that started with the same event) with a time constraint ("Combining
-- Patterns"). a followedBy b one_or_more within 5 s: a1's run has expired when b1 comes
-- (6 s); {a2 b1} discards a2's other runs, so no {a2 b1 b2}.
rule { name = "within_skip_to_next", key = "k", skip = "skip_to_next", within = "5s",
  pattern = begin("a"):where{ type = "a" }:followed_by("b"):where{ type = "b" }:one_or_more(),
  examples = {
    { events = seq("a1@0 a2@3 b1@6 b2@7"), matches = { { "a2", "b1" } } },
  } }

-- Flink docs, FlinkCEP "After Match Skip Strategy" table (b+ then c, SKIP_TO_LAST[b]:
-- b1 b2 b3 c, b3 c) with within 3 s: b1's run has expired when c comes (3 s after b1), so
-- the matches are {b2 b3 c} and {b3 c} (which starts at the last b: not discarded).
rule { name = "within_skip_to_last", key = "k", skip = skip_to_last("b"), within = "3s",
  pattern = begin("b"):where{ type = "b" }:one_or_more():next("c"):where{ type = "c" },
  examples = {
    { events = seq("b1@0 b2@1 b3@2 c@3"), matches = { { "b2", "b3", "c" }, { "b3", "c" } } },
  } }
