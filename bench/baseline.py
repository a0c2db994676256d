#!/usr/bin/env python3
"""baseline.py — what a user would write instead of vigil: one pass over the
card file with exactly three rules hard-coded, keyed by customer_id:
  over_220        a transaction with tx_amount > 220
  four_in_1h      >= 4 transactions in the sliding hour (t - 1h, t]
  small_then_big  a transaction < 20 followed by one > 150 within 1 h
                  (skip past last event: after a match, pending smalls are dropped)
Prints the alert count of each rule. bench/rules_baseline/ holds the same
rules for vigil; bench/baseline.sh compares counts and time."""
import calendar, gzip, sys, time
from collections import defaultdict, deque

def main(path):
    over = four = small_big = 0
    recent = defaultdict(deque)     # customer -> times in the last hour
    smalls = defaultdict(list)      # customer -> start times of pending small transactions
    days = {}                       # "YYYY-MM-DD" -> epoch seconds: parse each date once
    with gzip.open(path, "rt") as f:
        next(f)                     # header: transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,...
        for line in f:
            p = line.split(",", 5)
            ts = p[1]
            base = days.get(ts[:10])
            if base is None:
                base = days[ts[:10]] = calendar.timegm(time.strptime(ts[:10], "%Y-%m-%d"))
            t = base + int(ts[11:13]) * 3600 + int(ts[14:16]) * 60 + int(ts[17:19])
            c = p[2]
            a = float(p[4])
            if a > 220:
                over += 1
            q = recent[c]
            while q and q[0] <= t - 3600:
                q.popleft()
            q.append(t)
            if len(q) >= 4:
                four += 1
            if a > 150:
                pend = smalls[c]
                if pend:
                    pend[:] = [s for s in pend if t - s < 3600]
                    if pend:
                        small_big += 1
                        pend.clear()
            elif a < 20:
                smalls[c].append(t)
    print(f"over_220 {over}\nfour_in_1h {four}\nsmall_then_big {small_big}")

if __name__ == "__main__":
    main(sys.argv[1])
