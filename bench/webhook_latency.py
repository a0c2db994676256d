#!/usr/bin/env python3
"""webhook_latency.py — event → webhook latency from the webhook receiver's log
(issue 4, item 4; run by bench/durable.sh).

    python3 bench/webhook_latency.py WEBHOOKS.jsonl [--stamp sent_us] [--skip-secs S]

Each line of tests/tools/webhook_receiver's --out file is one request; its
"body" is the Standard Webhooks envelope {"type":"alert.created","data":<alert>}.
The latency of an alert is the receiver's arrival time ("received_us", µs
since the epoch) minus the send time that bench_nats_pub --stamp wrote into
the alert's last event: the evidence entry whose id (transaction_id or
report_id) is the alert's "event" (when no entry matches, the latest stamp
in the evidence). Retried deliveries of one alert id count once (the first
arrival). --skip-secs drops alerts whose last event was sent in the first S
seconds (warm-up). Prints RESULT lines: count, p50/p90/p99/p99.9/max in ms;
and the same latency split at the alert's "detected_at" (vigil's wall clock
when the engine produced it, ms resolution): detect_* = send → detected
(ingest, matching, the batch's commit), deliver_* = detected → received
(outbox, dispatcher, HTTP).
Without "received_us" in the log (an older receiver) it says so and exits 3.
"""
import json
import sys
from datetime import datetime, timezone


def pct(xs, p):
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    path, stamp, skip = args[0], "sent_us", 0.0
    i = 1
    while i < len(args):
        if args[i] == "--stamp":
            stamp = args[i + 1]
        elif args[i] == "--skip-secs":
            skip = float(args[i + 1])
        else:
            print("webhook_latency: unknown option " + args[i], file=sys.stderr)
            return 2
        i += 2
    seen, rows, no_stamp, no_recv, lines = set(), [], 0, 0, 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            lines += 1
            r = json.loads(line)
            if "received_us" not in r:
                no_recv += 1
                continue
            body = r.get("body") or {}
            a = body.get("data") if isinstance(body, dict) else None
            if not isinstance(a, dict) or a.get("id") in seen:
                continue
            seen.add(a.get("id"))
            last = str(a.get("event"))
            sent = None
            stamps = []
            for e in a.get("evidence") or []:
                if not isinstance(e, dict) or stamp not in e:
                    continue
                stamps.append(e[stamp])
                if str(e.get("transaction_id", e.get("report_id", e.get("id")))) == last:
                    sent = e[stamp]
            if sent is None and stamps:
                sent = max(stamps)
            if sent is None:
                no_stamp += 1
                continue
            det_us = None
            try:
                det_us = datetime.strptime(a.get("detected_at") or "", "%Y-%m-%dT%H:%M:%S.%fZ") \
                    .replace(tzinfo=timezone.utc).timestamp() * 1e6
            except ValueError:
                pass
            rows.append((sent, r["received_us"] - sent, det_us))
    if no_recv == lines and lines:
        print("webhook_latency: the receiver's log has no received_us field (an older webhook_receiver)", file=sys.stderr)
        return 3
    if not rows:
        print("RESULT alerts 0")
        return 1
    t0 = min(row[0] for row in rows)
    rows = [row for row in rows if row[0] - t0 >= skip * 1e6]
    lat = sorted(row[1] / 1000.0 for row in rows)
    print("RESULT requests %d" % lines)
    print("RESULT alerts %d" % len(lat))
    print("RESULT alerts_without_stamp %d" % no_stamp)
    for name, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
        print("RESULT %s_ms %.3f" % (name, pct(lat, p)))
    print("RESULT max_ms %.3f" % lat[-1])
    print("RESULT mean_ms %.3f" % (sum(lat) / len(lat)))
    det = sorted((d - s) / 1000.0 for s, _, d in rows if d is not None)
    dlv = sorted((s + l - d) / 1000.0 for s, l, d in rows if d is not None)
    if det:
        for name, xs in (("detect", det), ("deliver", dlv)):
            print("RESULT %s_p50_ms %.3f" % (name, pct(xs, 50)))
            print("RESULT %s_p99_ms %.3f" % (name, pct(xs, 99)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
