/* js_fetch.c — every JetStream pull of the ingest wing (jetstream.c's
 * fetcher, pair_fetch.c, rekey.c) goes through here, around a heap
 * overflow in libnats 3.4.1 (Debian 12's) fetch.
 *
 * The bug. `_fetch` (natsSubscription_Fetch / _FetchRequest) allocates an
 * array of `Batch` messages, first takes what already waits in the pull
 * subscription (`count` of them: late deliveries of an earlier pull that
 * returned on the client's timeout), then asks the server for
 * `Batch - count` more and loops `while (count != Batch - count0)`. When
 * more than half a batch already waited, that bound is below `count` and
 * never met: the loop stops only at the server's end-of-request status,
 * and every late delivery that arrives meanwhile is written past the
 * array. Seen under valgrind (a slow client: deliveries outlive the
 * fetch's timeout): an invalid write one past the 1,000-message array,
 * then a crash in libnats' threads; reproduced with a plain nats.c
 * program (a 1 ms fetch, then a fetch with 464 messages waiting returned
 * 536 = 1000 − 464, the shrunk bound). On a loaded machine the same
 * timing can happen in production.
 *
 * The guard: ask for B = 2 × (waiting + want) when messages wait (B = want
 * when none do), so what the first stage takes (at most what waits, plus
 * what arrives in the microseconds before libnats looks) stays at or below
 * B / 2 ≤ B − count0: the loop then ends at its bound, inside the array. A
 * round may so return more than `want` messages; callers take any count. */
#include <limits.h>
#include "ingest_int.h"

static int guarded_batch(natsSubscription *sub, int want) {
    int waiting = 0;
    if (natsSubscription_GetPending(sub, &waiting, NULL) != NATS_OK || waiting < 0) waiting = 0;
    long long b = waiting ? 2LL * ((long long)waiting + want) : want;
    return b > INT_MAX / 2 ? INT_MAX / 2 : (int)b;
}

natsStatus vjs_fetch(natsMsgList *list, natsSubscription *sub, int want, int64_t wait_ms, int wait_for_one) {
    jsFetchRequest fr;
    jsFetchRequest_Init(&fr);
    fr.Batch = guarded_batch(sub, want);
    fr.NoWait = true;
    fr.Expires = wait_ms * 1000000LL;
    natsStatus ns = natsSubscription_FetchRequest(list, sub, &fr);
    if (ns != NATS_NOT_FOUND || !wait_for_one) return ns;
    /* the server said at once that nothing waits: wait for one message
     * (returned as soon as it comes; the next no-wait round takes the rest) */
    natsMsgList_Destroy(list);
    jsFetchRequest_Init(&fr);
    fr.Batch = guarded_batch(sub, 1);
    fr.Expires = wait_ms * 1000000LL;
    return natsSubscription_FetchRequest(list, sub, &fr);
}
