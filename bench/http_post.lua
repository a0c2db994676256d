-- http_post.lua — wrk script of the HTTP ingest benchmark (issue 4, item 3;
-- run by bench/durable.sh):
--
--   wrk -t1 -cC -dD -s bench/http_post.lua http://127.0.0.1:PORT/v1/events -- EVENTS.ndjson BATCH [MAX]
--
-- Reads the first MAX (default all) lines of EVENTS.ndjson (one JSON event
-- per line, in event-time order, as bench_nats_pub --dump writes them) and
-- POSTs them in order: BATCH = 1 sends each event alone (Content-Type
-- application/json), BATCH > 1 sends NDJSON bodies of BATCH lines
-- (application/x-ndjson), the bodies vigil's POST /v1/events takes. All
-- requests are formatted once in init(), so the load generator only copies
-- bytes while it runs. After the last body it starts again from the first
-- (those events are then late for vigil: the run should be shorter than one
-- pass; durable.sh reports vigil_events_late_total). Use one wrk thread
-- (-t1): every thread would send the same sequence. done() prints RESULT
-- lines for durable.sh.

local reqs, n, i = {}, 0, 0

function init(args)
  local path, batch, max = args[1], tonumber(args[2] or "1000"), tonumber(args[3] or "0")
  local f = assert(io.open(path, "r"))
  local lines, nl = {}, 0
  for line in f:lines() do
    if line ~= "" then
      nl = nl + 1
      lines[nl] = line
      if max > 0 and nl >= max then break end
    end
  end
  f:close()
  local headers = { ["Content-Type"] = batch > 1 and "application/x-ndjson" or "application/json" }
  for first = 1, nl, batch do
    local last = math.min(first + batch - 1, nl)
    local body = table.concat(lines, "\n", first, last) .. "\n"
    n = n + 1
    reqs[n] = wrk.format("POST", nil, headers, body)
  end
  lines = nil
  collectgarbage()
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests %d\nRESULT duration_s %.4f\nRESULT non2xx %d\n" ..
                         "RESULT socket_errors %d\nRESULT p50_ms %.3f\nRESULT p99_ms %.3f\n",
                         summary.requests, summary.duration / 1e6, e.status,
                         e.connect + e.read + e.write + e.timeout,
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
