/* webhooks.c — starts and stops webhook delivery for the server's
 * lifecycle: chooses the outbox (Redis stream, file or memory) and runs the
 * one dispatcher on it (webhooks.h). Moved here from server.c's
 * start_webhooks so that the lifecycle holds no alerts-wing logic. Its
 * metrics text (vigil_webhooks_metrics) is in dispatch_metrics.c, with the
 * dispatcher's, so that one helper writes every metric line of the wing. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "webhooks.h"
#include "server/common/log.h"

/* pairs: cluster mode's pair outbox on redis_url (issue 14). */
static vigil_status start(const vigil_endpoint_config *eps, int neps, const char *const *urls, int nurls,
                          const char *secret, const char *redis_url, const char *redis_prefix, const char *data_dir,
                          int outbox_fsync, int pairs, vigil_outbox **outbox, vigil_dispatch **dispatch,
                          vigil_error *err) {
    if (!outbox || !dispatch) return vigil_error_set(err, VIGIL_EINVAL, "webhooks: NULL argument");
    *outbox = NULL;
    *dispatch = NULL;
    if (neps < 0 || nurls < 0 || (neps && !eps) || (nurls && !urls))
        return vigil_error_set(err, VIGIL_EINVAL, "webhooks: bad endpoint list");
    int n = neps + nurls;
    if (!n) return VIGIL_OK;
    if (n > VIGIL_WEBHOOKS_MAX)
        return vigil_error_set(err, VIGIL_EINVAL, "%d webhook endpoints: at most %d", n, VIGIL_WEBHOOKS_MAX);
    vigil_endpoint_config all[VIGIL_WEBHOOKS_MAX];
    char names[VIGIL_WEBHOOKS_MAX][65];
    const char *pn[VIGIL_WEBHOOKS_MAX];
    for (int i = 0; i < n; i++) {
        if (i < neps) all[i] = eps[i];
        else all[i] = (vigil_endpoint_config){.url = urls[i - neps]};
        vigil_dispatch_endpoint_name(&all[i], i, names[i], sizeof names[i]);
        pn[i] = names[i];
    }
    vigil_error e;
    vigil_error_clear(&e);
    vigil_status st;
    vigil_outbox *ob = NULL;
    if (pairs) {   /* no connection at open: the reads connect (and retry) */
        st = vigil_outbox_pairs_open(redis_url, redis_prefix, NULL, pn, n, &ob, &e);
    } else if (redis_url) {
        for (;;) {   /* Redis not up yet: wait rather than start without the outbox */
            vigil_error_clear(&e);
            st = vigil_outbox_redis_open(redis_url, redis_prefix, pn, n, &ob, &e);
            /* LOADING: Redis is still reading its AOF */
            if (st != VIGIL_EUNAVAILABLE && !(st == VIGIL_ESTORE && strstr(e.msg, "LOADING"))) break;
            vigil_log(VIGIL_LOG_WARN, "alerts", "opening the outbox: %s; retrying", e.msg);
            usleep(500000);
        }
    } else if (data_dir && *data_dir) {
        st = vigil_outbox_file_open(data_dir, pn, n, outbox_fsync, &ob, &e);
    } else {
        st = vigil_outbox_mem_open(pn, n, VIGIL_WEBHOOKS_MEM_CAP, &ob, &e);
    }
    if (st == VIGIL_OK)
        st = vigil_dispatch_create(all, n, secret, ob, VIGIL_WEBHOOKS_SHUTDOWN_MS, dispatch, &e);
    if (st != VIGIL_OK) {
        if (ob) ob->destroy(ob);
        *dispatch = NULL;
        if (err) *err = e;
        return st;
    }
    *outbox = ob;
    return VIGIL_OK;
}

vigil_status vigil_webhooks_start(const vigil_endpoint_config *eps, int neps, const char *const *urls, int nurls,
                                  const char *secret, const char *redis_url, const char *redis_prefix,
                                  const char *data_dir, int outbox_fsync, vigil_outbox **outbox,
                                  vigil_dispatch **dispatch, vigil_error *err) {
    return start(eps, neps, urls, nurls, secret, redis_url, redis_prefix, data_dir, outbox_fsync, 0, outbox, dispatch,
                 err);
}

vigil_status vigil_webhooks_start_pairs(const vigil_endpoint_config *eps, int neps, const char *const *urls,
                                        int nurls, const char *secret, const char *redis_url,
                                        const char *redis_prefix, vigil_outbox **outbox, vigil_dispatch **dispatch,
                                        vigil_error *err) {
    if (!redis_url) return vigil_error_set(err, VIGIL_EINVAL, "webhooks: cluster mode needs redis.url");
    return start(eps, neps, urls, nurls, secret, redis_url, redis_prefix, NULL, 0, 1, outbox, dispatch, err);
}

vigil_status vigil_webhooks_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n, vigil_error *err) {
    if (!ob || n == 0) return VIGIL_OK;
    if (vigil_outbox_is_mem(ob)) {
        vigil_status st = vigil_outbox_mem_append(ob, alerts, n, err);
        return st == VIGIL_EFULL ? VIGIL_OK : st;   /* refused: counted and logged by the outbox */
    }
    return vigil_outbox_file_append(ob, alerts, n, err);   /* EINVAL for a Redis outbox */
}

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until every endpoint's backlog is empty and nothing is in flight,
 * or timeout_ms passed (the endpoints keep running meanwhile). */
static void drain(vigil_dispatch *d, long timeout_ms) {
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        int busy = 0;
        for (int i = 0; i < vigil_dispatch_count(d) && !busy; i++) {
            vigil_dispatch_stats st;
            uint64_t depth = 0;
            busy = vigil_dispatch_stats_get(d, i, &st) != VIGIL_OK || st.inflight ||
                   vigil_dispatch_depth(d, i, &depth, NULL) != VIGIL_OK || depth;
        }
        if (!busy || mono_ms() >= deadline) return;
        usleep(5000);
    }
}

void vigil_webhooks_stop(vigil_dispatch *d, vigil_outbox *ob) {
    if (d && vigil_outbox_is_mem(ob)) drain(d, vigil_dispatch_shutdown_ms(d));
    vigil_dispatch_destroy(d);
    if (ob) ob->destroy(ob);
}
