/* outbox_mem.c — the in-memory outbox: the third backend of struct
 * vigil_outbox (outbox.h), for a server where nothing is durable (no Redis,
 * data_dir ""). It lets that case use the same dispatcher (dispatch.c) as
 * the durable ones instead of a second webhook sender (issue 10).
 *
 * Shape: one ring of alerts in append order, each with a bit per endpoint
 * that acked it, and a monotonic sequence number as its ref (the ring holds
 * consecutive sequences, so a ref finds its slot in O(1)). The oldest alert
 * leaves the ring once every endpoint acked it; an acked alert behind an
 * unacked older one stays (and counts against the capacity) until that one
 * is acked too. Dead letters are kept in a second ring of their JSON texts.
 *
 * Bounds and policy when full (STYLE.md "every queue has a capacity"):
 *   - at most `cap` alerts and VIGIL_OUTBOX_MEM_MAX_BYTES of alert JSON are
 *     held; an append that would pass either is refused with VIGIL_EFULL,
 *     counted (`refused`) and logged on stderr at most once a second. The
 *     writer is never blocked.
 *   - at most VIGIL_OUTBOX_MEM_DEAD_MAX dead letters are kept; the oldest
 *     one is dropped to make room (counted in `dead_dropped`).
 * Nothing survives the process: a restart loses what was not delivered.
 *
 * Threads: one mutex guards everything; read() waits on a condition
 * variable that append() signals. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbox.h"
#include "outbox_util.h"
#include "sign.h"
#include "vigil/clock.h"
#include "vigil/event.h"
#include "server/common/log.h"

#define MAX_ENDPOINTS 64          /* one ack bit each */
#define MAX_EP_NAME 64            /* names[i] holds 64 bytes + NUL */
#define DEF_CAP 100000
#define LOG_EVERY_MS 1000

typedef struct ment {
    vigil_alert_record r;         /* owns r.json */
    uint64_t acked;               /* bit i: endpoint i acked */
} ment;

typedef struct mdead {
    int ep;                       /* endpoint index */
    char *json;                   /* one dead-letter object (list_dead's shape), malloc'd */
} mdead;

typedef struct mob {
    vigil_outbox base;
    pthread_mutex_t mu;
    pthread_cond_t appended;
    char *names[MAX_ENDPOINTS];   /* malloc'd */
    int neps;
    uint64_t all;                 /* every endpoint's bit */
    ment *ring;
    size_t cap, head, n;          /* n alerts from ring[head], sequences head_seq.. */
    uint64_t head_seq;            /* sequence of ring[head] (the first is 1) */
    size_t bytes;                 /* JSON bytes held */
    uint64_t *pending;            /* per endpoint: held and not acked by it */
    mdead dead[VIGIL_OUTBOX_MEM_DEAD_MAX];
    size_t dead_head, dead_n;
    unsigned long long nappended, refused, refused_unlogged, dead_dropped;
    long long log_ms;
} mob;

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ment *at(mob *o, size_t k) { return &o->ring[(o->head + k) % o->cap]; }

/* Drop the oldest alerts every endpoint acked. Locked. */
static void trim(mob *o) {
    while (o->n && (at(o, 0)->acked & o->all) == o->all) {
        ment *e = at(o, 0);
        o->bytes -= e->r.len;
        vigil_alert_record_free(&e->r);
        o->head = (o->head + 1) % o->cap;
        o->head_seq++;
        o->n--;
    }
}

/* voutbox_held.scan: endpoint i's unacked alerts after `from`. Locked. */
static int m_scan(void *self, int i, uint64_t from, vigil_alert_record *out, int max, vigil_status *s,
                  vigil_error *err) {
    mob *o = self;
    uint64_t bit = 1ull << i;
    int got = 0;
    size_t k = from + 1 > o->head_seq ? (size_t)(from + 1 - o->head_seq) : 0;
    for (; k < o->n && got < max; k++) {
        ment *e = at(o, k);
        if (e->acked & bit) continue;
        vigil_alert_record *x = &out[got];
        *x = e->r;
        x->json = malloc(e->r.len + 1);
        if (!x->json) {
            *s = voutbox_oom(err);
            break;
        }
        memcpy(x->json, e->r.json, e->r.len + 1);
        snprintf(x->ref, sizeof x->ref, "%llu", (unsigned long long)(o->head_seq + k));
        got++;
    }
    return got;
}

static vigil_status m_read(vigil_outbox *ob, const char *ep, const char *after, vigil_alert_record *out, int max,
                           int *n, int wait_ms, vigil_error *err) {
    mob *o = (mob *)ob;
    voutbox_held h = {0};
    if (o) h = (voutbox_held){o, &o->mu, &o->appended, o->names, o->neps, m_scan};
    return voutbox_read(&h, ep, after, out, max, n, wait_ms, err);
}

/* Mark seq acked by endpoint i (nothing when it left the ring already). Locked. */
static void ack_one(mob *o, int i, uint64_t seq) {
    if (seq < o->head_seq || seq - o->head_seq >= o->n) return;
    ment *e = at(o, (size_t)(seq - o->head_seq));
    uint64_t bit = 1ull << i;
    if (e->acked & bit) return;
    e->acked |= bit;
    o->pending[i]--;
}

static vigil_status m_ack(vigil_outbox *ob, const char *ep, const char *const *refs, int n, vigil_error *err) {
    mob *o = (mob *)ob;
    if (!o) return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad argument");
    vigil_status s = voutbox_parse_refs(refs, n, NULL, err);   /* all or nothing: check first */
    if (s != VIGIL_OK) return s;
    int i = voutbox_lock_ep(&o->mu, o->names, o->neps, ep, err);
    if (i < 0) return VIGIL_ENOTFOUND;
    for (int k = 0; k < n; k++) {
        uint64_t seq = 0;
        voutbox_parse_seq(refs[k], &seq);
        ack_one(o, i, seq);
    }
    trim(o);
    pthread_mutex_unlock(&o->mu);
    return VIGIL_OK;
}

static vigil_status m_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e, const char *reason,
                           int attempts, vigil_error *err) {
    mob *o = (mob *)ob;
    uint64_t seq;
    size_t len = 0;
    if (!o || !e || !e->ref[0] || voutbox_parse_seq(e->ref, &seq) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox dead: bad argument");
    char *line = voutbox_dead_line(ep, e, reason, attempts, &len);
    if (!line) return voutbox_oom(err);
    line[len - 1] = '\0';   /* kept as an object; list_dead joins them into an array */
    int i = voutbox_lock_ep(&o->mu, o->names, o->neps, ep, err);
    if (i < 0) {
        free(line);
        return VIGIL_ENOTFOUND;
    }
    if (o->dead_n == VIGIL_OUTBOX_MEM_DEAD_MAX) {   /* full: the oldest dead letter goes */
        free(o->dead[o->dead_head].json);
        o->dead_head = (o->dead_head + 1) % VIGIL_OUTBOX_MEM_DEAD_MAX;
        o->dead_n--;
        o->dead_dropped++;
    }
    mdead *d = &o->dead[(o->dead_head + o->dead_n) % VIGIL_OUTBOX_MEM_DEAD_MAX];
    d->ep = i;
    d->json = line;
    o->dead_n++;
    ack_one(o, i, seq);
    trim(o);
    pthread_mutex_unlock(&o->mu);
    return VIGIL_OK;
}

static vigil_status m_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json, vigil_error *err) {
    mob *o = (mob *)ob;
    vigil_status s = voutbox_list_dead_begin(o, json, &limit, NULL, err);
    if (s != VIGIL_OK) return s;
    pthread_mutex_lock(&o->mu);
    int want = -1;
    if (ep && (want = voutbox_ep_index(o->names, o->neps, ep)) < 0) {
        pthread_mutex_unlock(&o->mu);
        return voutbox_unknown_ep(err, ep);
    }
    size_t len = 3;
    int k = 0;
    for (size_t j = o->dead_n; j > 0 && k < limit; j--) {   /* newest first */
        mdead *d = &o->dead[(o->dead_head + j - 1) % VIGIL_OUTBOX_MEM_DEAD_MAX];
        if (want >= 0 && d->ep != want) continue;
        len += strlen(d->json) + 1;
        k++;
    }
    char *buf = malloc(len);
    if (buf) {
        char *p = buf;
        *p++ = '[';
        k = 0;
        for (size_t j = o->dead_n; j > 0 && k < limit; j--) {
            mdead *d = &o->dead[(o->dead_head + j - 1) % VIGIL_OUTBOX_MEM_DEAD_MAX];
            if (want >= 0 && d->ep != want) continue;
            if (k++) *p++ = ',';
            size_t n = strlen(d->json);
            memcpy(p, d->json, n);
            p += n;
        }
        *p++ = ']';
        *p = '\0';
    }
    pthread_mutex_unlock(&o->mu);
    if (!buf) return voutbox_oom(err);
    *json = buf;
    return VIGIL_OK;
}

static vigil_status m_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    mob *o = (mob *)ob;
    if (!o || !n) return vigil_error_set(err, VIGIL_EINVAL, "outbox depth: bad argument");
    return voutbox_depth(&o->mu, o->names, o->neps, o->pending, ep, n, err);
}

static void m_destroy(vigil_outbox *ob) {
    mob *o = (mob *)ob;
    if (!o) return;
    for (size_t k = 0; o->ring && k < o->n; k++) vigil_alert_record_free(&at(o, k)->r);
    for (size_t j = 0; j < o->dead_n; j++) free(o->dead[(o->dead_head + j) % VIGIL_OUTBOX_MEM_DEAD_MAX].json);
    free(o->ring);
    for (int i = 0; i < o->neps; i++) free(o->names[i]);
    free(o->pending);
    pthread_cond_destroy(&o->appended);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

vigil_status vigil_outbox_mem_open(const char *const *endpoints, int nendpoints, size_t cap, vigil_outbox **out,
                                   vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "outbox: NULL argument");
    *out = NULL;
    vigil_status s = voutbox_check_endpoints(endpoints, nendpoints, MAX_ENDPOINTS, MAX_EP_NAME, err);
    if (s != VIGIL_OK) return s;
    mob *o = calloc(1, sizeof *o);
    if (!o) return voutbox_oom(err);
    pthread_mutex_init(&o->mu, NULL);
    voutbox_cond_init(&o->appended);   /* m_read's deadline is on CLOCK_MONOTONIC */
    o->base = (vigil_outbox){m_read, m_ack, m_dead, m_list_dead, m_depth, m_destroy, NULL};
    o->cap = cap ? cap : DEF_CAP;
    o->head_seq = 1;
    o->all = nendpoints == 64 ? ~0ull : (1ull << nendpoints) - 1;
    o->ring = calloc(o->cap, sizeof *o->ring);
    o->pending = calloc((size_t)(nendpoints ? nendpoints : 1), sizeof *o->pending);
    int named = 1;
    for (int i = 0; named && i < nendpoints; i++) {
        named = (o->names[i] = strdup(endpoints[i])) != NULL;
        o->neps = i + 1;
    }
    if (!o->ring || !o->pending || !named) {
        m_destroy(&o->base);
        return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory for %zu alerts", cap);
    }
    *out = &o->base;
    return VIGIL_OK;
}

int vigil_outbox_is_mem(const vigil_outbox *ob) { return ob && ob->destroy == m_destroy; }

vigil_status vigil_outbox_mem_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n, vigil_error *err) {
    if (!vigil_outbox_is_mem(ob)) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a memory outbox");
    mob *o = (mob *)ob;
    vigil_status s = voutbox_check_alerts(alerts, n, VIGIL_ALERT_ID_MAX, VIGIL_WEBHOOK_MAX_ALERT, err);
    if (s != VIGIL_OK) return s;
    long long now = vigil_now_ms();
    int refused = 0;
    pthread_mutex_lock(&o->mu);
    for (int i = 0; i < n && s == VIGIL_OK; i++) {
        const vigil_alert_record *a = &alerts[i];
        if (o->neps == 0) {   /* nobody to deliver to: nothing to hold */
            o->nappended++;
            continue;
        }
        if (o->n == o->cap || o->bytes + a->len > VIGIL_OUTBOX_MEM_MAX_BYTES) {
            refused++;
            continue;
        }
        char *json = malloc(a->len + 1);
        if (!json) {
            s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory (alert %s and after not appended)", a->id);
            break;
        }
        memcpy(json, a->json, a->len);
        json[a->len] = '\0';
        ment *e = at(o, o->n);
        e->r = *a;
        e->r.json = json;
        e->r.ref[0] = '\0';
        e->r.appended_ms = now;
        e->acked = 0;
        o->n++;
        o->bytes += a->len;
        o->nappended++;
        for (int k = 0; k < o->neps; k++) o->pending[k]++;
    }
    if (refused) {
        o->refused += (unsigned long long)refused;
        o->refused_unlogged += (unsigned long long)refused;
        long long m = mono_ms();
        if (!o->log_ms || m - o->log_ms >= LOG_EVERY_MS) {
            vigil_log(VIGIL_LOG_WARN, "alerts", "outbox (memory) full: %zu alerts, %zu bytes held; %llu alert%s refused " "(not delivered to webhooks) since the last such line", o->n, o->bytes,
                    o->refused_unlogged, o->refused_unlogged == 1 ? "" : "s");
            o->log_ms = m;
            o->refused_unlogged = 0;
        }
        if (s == VIGIL_OK)
            s = vigil_error_set(err, VIGIL_EFULL, "outbox (memory) full: %d of %d alerts refused", refused, n);
    }
    if (o->n) pthread_cond_broadcast(&o->appended);
    pthread_mutex_unlock(&o->mu);
    return s;
}

vigil_status vigil_outbox_mem_stats(vigil_outbox *ob, vigil_outbox_mem_counters *st) {
    if (!vigil_outbox_is_mem(ob) || !st) return VIGIL_EINVAL;
    mob *o = (mob *)ob;
    pthread_mutex_lock(&o->mu);
    st->appended = o->nappended;
    st->refused = o->refused;
    st->held = o->n;
    st->bytes = o->bytes;
    st->cap = o->cap;
    st->dead = o->dead_n;
    st->dead_dropped = o->dead_dropped;
    pthread_mutex_unlock(&o->mu);
    return VIGIL_OK;
}
