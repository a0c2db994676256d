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
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "outbox.h"
#include "sign.h"
#include "vigil/clock.h"
#include "vigil/event.h"

#define MAX_ENDPOINTS 64          /* one ack bit each */
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
    char (*names)[65];
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

static int ep_index(const mob *o, const char *ep) {
    for (int i = 0; ep && i < o->neps; i++)
        if (!strcmp(o->names[i], ep)) return i;
    return -1;
}

/* "" -> 0; a decimal sequence -> it; -1 when malformed. */
static int parse_seq(const char *s, uint64_t *out) {
    *out = 0;
    if (!s) return -1;
    if (!*s) return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || *s < '0' || *s > '9') return -1;
    *out = v;
    return 0;
}

static int valid_id(const char *id) {
    size_t n = strnlen(id, VIGIL_WEBHOOK_MAX_ID + 1);
    if (n == 0 || n > VIGIL_WEBHOOK_MAX_ID) return 0;
    for (size_t i = 0; i < n; i++)   /* it goes into a header and the signed string */
        if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f) return 0;
    return 1;
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

static vigil_status m_read(vigil_outbox *ob, const char *ep, const char *after, vigil_alert_record *out, int max,
                           int *n, int wait_ms, vigil_error *err) {
    mob *o = (mob *)ob;
    uint64_t from;
    if (n) *n = 0;
    if (!o || !out || !n || max <= 0) return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad argument");
    if (parse_seq(after, &from) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad position '%s'", after);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (wait_ms > 0) {
        deadline.tv_sec += wait_ms / 1000;
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i < 0) {
        pthread_mutex_unlock(&o->mu);
        return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
    }
    uint64_t bit = 1ull << i;
    vigil_status s = VIGIL_OK;
    int got = 0;
    for (;;) {
        size_t k = from + 1 > o->head_seq ? (size_t)(from + 1 - o->head_seq) : 0;
        for (; k < o->n && got < max; k++) {
            ment *e = at(o, k);
            if (e->acked & bit) continue;
            vigil_alert_record *x = &out[got];
            *x = e->r;
            x->json = malloc(e->r.len + 1);
            if (!x->json) {
                s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
                break;
            }
            memcpy(x->json, e->r.json, e->r.len + 1);
            snprintf(x->ref, sizeof x->ref, "%llu", (unsigned long long)(o->head_seq + k));
            got++;
        }
        if (got || s != VIGIL_OK || wait_ms <= 0) break;
        if (pthread_cond_timedwait(&o->appended, &o->mu, &deadline) == ETIMEDOUT) wait_ms = 0;
    }
    pthread_mutex_unlock(&o->mu);
    if (s != VIGIL_OK) {
        for (int k = 0; k < got; k++) vigil_alert_record_free(&out[k]);
        got = 0;
    }
    *n = got;
    return s;
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
    if (!o || n < 0 || (n > 0 && !refs)) return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad argument");
    for (int k = 0; k < n; k++) {
        uint64_t seq;
        if (parse_seq(refs[k], &seq) != 0 || !refs[k][0])
            return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad position '%s'",
                                   refs[k] ? refs[k] : "(null)");
    }
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i < 0) {
        pthread_mutex_unlock(&o->mu);
        return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
    }
    for (int k = 0; k < n; k++) {
        uint64_t seq;
        parse_seq(refs[k], &seq);
        ack_one(o, i, seq);
    }
    trim(o);
    pthread_mutex_unlock(&o->mu);
    return VIGIL_OK;
}

/* {"endpoint","alert_id","rule","key","reason","attempts","dead_at","alert"}:
 * the shape of the file and Redis backends' dead letters. NULL: no memory. */
static char *dead_json(const char *ep, const vigil_alert_record *e, const char *reason, int attempts) {
    char ts[40];
    vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "endpoint", ep);
    cJSON_AddStringToObject(o, "alert_id", e->id);
    cJSON_AddStringToObject(o, "rule", e->rule);
    cJSON_AddStringToObject(o, "key", e->key);
    cJSON_AddStringToObject(o, "reason", reason ? reason : "");
    cJSON_AddNumberToObject(o, "attempts", attempts);
    cJSON_AddStringToObject(o, "dead_at", ts);
    cJSON *a = e->json ? cJSON_ParseWithLength(e->json, e->len) : NULL;
    if (!a) a = e->json ? cJSON_CreateString(e->json) : cJSON_CreateNull();
    cJSON_AddItemToObject(o, "alert", a);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return NULL;
    char *copy = strdup(txt);   /* plain malloc'd, freed with free() */
    cJSON_free(txt);
    return copy;
}

static vigil_status m_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e, const char *reason,
                           int attempts, vigil_error *err) {
    mob *o = (mob *)ob;
    uint64_t seq;
    if (!o || !e || parse_seq(e->ref, &seq) != 0 || !e->ref[0])
        return vigil_error_set(err, VIGIL_EINVAL, "outbox dead: bad argument");
    char *line = dead_json(ep ? ep : "", e, reason, attempts);
    if (!line) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i < 0) {
        pthread_mutex_unlock(&o->mu);
        free(line);
        return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
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
    if (!o || !json) return vigil_error_set(err, VIGIL_EINVAL, "outbox list_dead: bad argument");
    *json = NULL;
    if (limit <= 0) limit = 100;
    if (limit > 10000) limit = 10000;
    pthread_mutex_lock(&o->mu);
    int want = -1;
    if (ep && (want = ep_index(o, ep)) < 0) {
        pthread_mutex_unlock(&o->mu);
        return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep);
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
    if (!buf) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    *json = buf;
    return VIGIL_OK;
}

static vigil_status m_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    mob *o = (mob *)ob;
    if (!o || !n) return vigil_error_set(err, VIGIL_EINVAL, "outbox depth: bad argument");
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i >= 0) *n = o->pending[i];
    pthread_mutex_unlock(&o->mu);
    if (i < 0) return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
    return VIGIL_OK;
}

static void m_destroy(vigil_outbox *ob) {
    mob *o = (mob *)ob;
    if (!o) return;
    for (size_t k = 0; o->ring && k < o->n; k++) vigil_alert_record_free(&at(o, k)->r);
    for (size_t j = 0; j < o->dead_n; j++) free(o->dead[(o->dead_head + j) % VIGIL_OUTBOX_MEM_DEAD_MAX].json);
    free(o->ring);
    free(o->names);
    free(o->pending);
    pthread_cond_destroy(&o->appended);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

vigil_status vigil_outbox_mem_open(const char *const *endpoints, int nendpoints, size_t cap, vigil_outbox **out,
                                   vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "outbox: NULL argument");
    *out = NULL;
    if (nendpoints < 0 || nendpoints > MAX_ENDPOINTS || (nendpoints > 0 && !endpoints))
        return vigil_error_set(err, VIGIL_EINVAL, "outbox: 0..%d endpoints", MAX_ENDPOINTS);
    for (int i = 0; i < nendpoints; i++) {
        if (!endpoints[i] || !*endpoints[i] || strlen(endpoints[i]) > 64)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint name %d must be 1..64 characters", i + 1);
        for (int k = 0; k < i; k++)
            if (!strcmp(endpoints[k], endpoints[i]))
                return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint '%s' given twice", endpoints[i]);
    }
    mob *o = calloc(1, sizeof *o);
    if (!o) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_t ca;   /* m_read's deadline is on CLOCK_MONOTONIC */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->appended, &ca);
    pthread_condattr_destroy(&ca);
    o->base = (vigil_outbox){m_read, m_ack, m_dead, m_list_dead, m_depth, m_destroy};
    o->cap = cap ? cap : DEF_CAP;
    o->head_seq = 1;
    o->neps = nendpoints;
    o->all = nendpoints == 64 ? ~0ull : (1ull << nendpoints) - 1;
    o->ring = calloc(o->cap, sizeof *o->ring);
    o->names = calloc((size_t)(nendpoints ? nendpoints : 1), sizeof *o->names);
    o->pending = calloc((size_t)(nendpoints ? nendpoints : 1), sizeof *o->pending);
    if (!o->ring || !o->names || !o->pending) {
        m_destroy(&o->base);
        return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory for %zu alerts", cap);
    }
    for (int i = 0; i < nendpoints; i++) snprintf(o->names[i], sizeof o->names[i], "%s", endpoints[i]);
    *out = &o->base;
    return VIGIL_OK;
}

int vigil_outbox_is_mem(const vigil_outbox *ob) { return ob && ob->destroy == m_destroy; }

vigil_status vigil_outbox_mem_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n, vigil_error *err) {
    if (!vigil_outbox_is_mem(ob)) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a memory outbox");
    mob *o = (mob *)ob;
    if (n < 0 || (n > 0 && !alerts)) return vigil_error_set(err, VIGIL_EINVAL, "outbox append: bad argument");
    for (int i = 0; i < n; i++) {
        const vigil_alert_record *a = &alerts[i];
        if (!valid_id(a->id))
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %d: id must be 1..%d printable "
                                   "characters without spaces", i + 1, VIGIL_WEBHOOK_MAX_ID);
        if (!a->json || a->len == 0)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %s: no JSON", a->id);
        if (a->len > VIGIL_WEBHOOK_MAX_ALERT)
            return vigil_error_set(err, VIGIL_ETOOBIG, "outbox append: alert %s: %zu bytes (at most %u)", a->id,
                                   a->len, VIGIL_WEBHOOK_MAX_ALERT);
    }
    long long now = vigil_now_ms();
    vigil_status s = VIGIL_OK;
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
            fprintf(stderr, "vigil: outbox (memory) full: %zu alerts, %zu bytes held; %llu alert%s refused "
                    "(not delivered to webhooks) since the last such line\n", o->n, o->bytes,
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
