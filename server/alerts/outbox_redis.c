/* outbox_redis.c — the alert outbox as a Redis stream, for the Redis store (outbox.h).
 *
 * Why it exists: with --redis the workers XADD each alert to <prefix>:outbox
 * inside the MULTI/EXEC that commits the key state which produced it
 * (redis_store.c), so the outbox is exactly as durable as the state. This
 * file is the reading side for the webhook dispatchers (dispatch.c):
 *
 *   - each endpoint is a consumer group named after it (XGROUP CREATE … 0
 *     MKSTREAM, BUSYGROUP ignored; re-created on NOGROUP, e.g. after Redis
 *     lost its data), with one consumer, "vigil";
 *   - read: the consumer's own pending entries first (XREADGROUP … <after or
 *     0>: what a previous run read and never acked), then new ones
 *     (XREADGROUP … ">" with BLOCK wait_ms). Once a pending scan came back
 *     empty the endpoint goes straight to ">" until a read asks for an
 *     earlier position again ("" after a restart of the dispatcher);
 *   - ack: XACK; at most once a second (and on vigil_outbox_redis_trim) the
 *     stream is trimmed with XTRIM MINID to the oldest entry that some
 *     configured endpoint still needs (its oldest pending entry, else the
 *     one after its last-delivered id);
 *   - dead: MULTI, XADD <prefix>:deadletter MAXLEN ~ 100000 …, XACK, EXEC;
 *   - depth: XINFO GROUPS pending + lag (Redis 7); when lag is unknown, the
 *     entries after last-delivered-id are counted (up to 100000).
 *
 * Connections are the server's one Redis layer's (server/state/redis.h:
 * URL, timeouts, AUTH/SELECT, reconnecting, SIGPIPE, error mapping). A
 * blocking XREADGROUP holds its connection, so they come from a pool: a call
 * takes one (or clones a new one), and gives it back; one that saw an I/O
 * error comes back disconnected, the idle ones are dropped with it, and the
 * next call connects afresh. Redis down means VIGIL_EUNAVAILABLE from the
 * call, never a crash or a retry loop inside the call. Error replies are
 * VIGIL_ESTORE. */
#define _GNU_SOURCE
#include "vigil/clock.h"
#include "vigil/event.h"
#include "outbox.h"

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "server/state/redis.h"

#define ROB_MAGIC 0x524f4258u      /* "XBOR" */
#define CONSUMER "vigil"
#define POOL_MAX 32                /* idle connections kept */
#define TRIM_EVERY_MS 1000
#define DEAD_MAXLEN "100000"
#define DEAD_LIMIT_DEFAULT 100
#define DEAD_LIMIT_MAX 10000
#define DEAD_SCAN_MAX 100000       /* list_dead looks at most this far back */
#define LAG_COUNT_MAX 100000
#define PEL_SCANS_MAX 64           /* pages of deleted pending entries skipped per read */
#define MAX_EP_NAME 64

typedef struct sid {
    uint64_t ms, seq;
} sid;

typedef struct rconn {
    vigil_redis *r;
    struct rconn *next;
} rconn;

/* Per endpoint read state (guarded by mu). Every entry delivered to our
 * consumer and not acked is in its pending list; `high` is the newest id
 * delivered to it that a caller may still need. A read whose `after` is
 * below `high` (or "", or after a failed read) scans the pending list from
 * `after` first; once such a scan finds nothing, high = after and reads go
 * to ">" directly. */
typedef struct repst {
    char name[MAX_EP_NAME + 1];
    int scanned;             /* a pending scan found nothing after `high` */
    sid high;
} repst;

typedef struct rob {
    vigil_outbox base;       /* first */
    uint32_t magic;
    vigil_redis *proto;      /* the server and timeouts; never connected: pool members are its clones */
    char *stream, *dead;     /* "<prefix>:outbox", "<prefix>:deadletter" */
    char **names;            /* configured endpoints (count for trimming) */
    int neps;

    pthread_mutex_t mu;      /* pool, eps, last_trim_ms */
    rconn *pool;
    int npool;
    repst *eps;
    int neps_st, caps_st;
    long long last_trim_ms;
} rob;

/* ---- small helpers ------------------------------------------------------- */

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "ms-seq" (or "ms") → id. -1 when malformed. */
static int sid_parse(const char *s, size_t n, sid *out) {
    uint64_t a = 0, b = 0;
    size_t i = 0;
    if (n == 0) return -1;
    for (; i < n && s[i] != '-'; i++) {
        if (s[i] < '0' || s[i] > '9' || a > (UINT64_MAX - 9) / 10) return -1;
        a = a * 10 + (uint64_t)(s[i] - '0');
    }
    if (i == 0) return -1;
    if (i < n) {
        if (++i == n) return -1;
        for (; i < n; i++) {
            if (s[i] < '0' || s[i] > '9' || b > (UINT64_MAX - 9) / 10) return -1;
            b = b * 10 + (uint64_t)(s[i] - '0');
        }
    }
    out->ms = a;
    out->seq = b;
    return 0;
}

static int sid_cmp(sid a, sid b) {
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}

static sid sid_next(sid a) {
    if (a.seq == UINT64_MAX) {
        a.ms++;
        a.seq = 0;
    } else {
        a.seq++;
    }
    return a;
}

static int sid_prev(sid a, sid *out) {
    if (a.seq > 0) a.seq--;
    else if (a.ms > 0) {
        a.ms--;
        a.seq = UINT64_MAX;
    } else return -1;
    *out = a;
    return 0;
}

static void sid_fmt(sid a, char *buf, size_t n) {
    snprintf(buf, n, "%" PRIu64 "-%" PRIu64, a.ms, a.seq);
}

/* freeReplyObject, NULL-safe whatever the hiredis release. */
static void rfree(void *r) {
    if (r) freeReplyObject(r);
}

/* ---- connections --------------------------------------------------------- */

/* A call's connection: taken from the pool, given back by put(). */
typedef struct call {
    rob *o;
    vigil_redis *r;          /* NULL when get() failed */
} call;

/* Free idle pool members. */
static void pool_free(rconn *list) {
    while (list) {
        rconn *next = list->next;
        vigil_redis_destroy(list->r);
        free(list);
        list = next;
    }
}

static vigil_status get(rob *o, call *k, vigil_error *err) {
    k->o = o;
    k->r = NULL;
    pthread_mutex_lock(&o->mu);
    rconn *rc = o->pool;
    if (rc) {
        o->pool = rc->next;
        o->npool--;
    }
    pthread_mutex_unlock(&o->mu);
    vigil_redis *r = NULL;
    vigil_status s = VIGIL_OK;
    if (rc) {
        r = rc->r;
        free(rc);
    } else {
        s = vigil_redis_clone(o->proto, &r, err);
    }
    if (s == VIGIL_OK) s = vigil_redis_connect(r, err);
    if (s != VIGIL_OK) {
        vigil_redis_destroy(r);
        return s;
    }
    k->r = r;
    return VIGIL_OK;
}

static void put(call *k) {
    rob *o = k->o;
    if (!k->r) return;
    int broken = !vigil_redis_connected(k->r);
    rconn *rc = broken ? NULL : malloc(sizeof *rc);
    if (rc) {
        rc->r = k->r;
        pthread_mutex_lock(&o->mu);
        if (o->npool < POOL_MAX) {
            rc->next = o->pool;
            o->pool = rc;
            o->npool++;
            rc = NULL;
            k->r = NULL;
        }
        pthread_mutex_unlock(&o->mu);
        free(rc);
    }
    vigil_redis_destroy(k->r);
    k->r = NULL;
    if (broken) {
        /* The server went away: the idle connections are as dead as this
         * one. Drop them so the next calls connect afresh instead of each
         * failing once on a stale socket. */
        pthread_mutex_lock(&o->mu);
        rconn *list = o->pool;
        o->pool = NULL;
        o->npool = 0;
        pthread_mutex_unlock(&o->mu);
        pool_free(list);
    }
}

/* One command. *out is the reply (caller frees) unless it is an error:
 * VIGIL_EUNAVAILABLE (no reply: the layer dropped the connection) or
 * VIGIL_ESTORE (an error reply; its text in err, and in *out when keep_err). */
static vigil_status cmd(call *k, redisReply **out, int keep_err, int argc, const char **argv,
                        const size_t *lens, vigil_error *err) {
    *out = NULL;
    vigil_redis_cmd c = {argc, argv, lens};
    redisReply *r = NULL;
    vigil_status s = vigil_redis_command(k->r, &c, &r, argv[0], err);
    if (s != VIGIL_OK) return s;
    s = vigil_redis_reply_check(k->r, r, argv[0], err);
    if (s != VIGIL_OK) {
        if (keep_err) *out = r;
        else rfree(r);
        return s;
    }
    *out = r;
    return VIGIL_OK;
}

static int is_err(const redisReply *r, const char *prefix) {
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* XGROUP CREATE <stream> <ep> 0 MKSTREAM; BUSYGROUP is fine. */
static vigil_status create_group(call *k, const char *ep, vigil_error *err) {
    const char *av[] = {"XGROUP", "CREATE", k->o->stream, ep, "0", "MKSTREAM"};
    size_t al[] = {6, 6, strlen(k->o->stream), strlen(ep), 1, 8};
    redisReply *r;
    vigil_status s = cmd(k, &r, 1, 6, av, al, err);
    if (s == VIGIL_ESTORE && is_err(r, "BUSYGROUP")) s = VIGIL_OK;
    rfree(r);
    return s;
}

/* ---- reading ------------------------------------------------------------- */

static repst *ep_state(rob *o, const char *ep) {
    for (int i = 0; i < o->neps_st; i++)
        if (!strcmp(o->eps[i].name, ep)) return &o->eps[i];
    if (o->neps_st == o->caps_st) {
        int cap = o->caps_st ? o->caps_st * 2 : 8;
        repst *n = realloc(o->eps, (size_t)cap * sizeof *n);
        if (!n) return NULL;
        o->eps = n;
        o->caps_st = cap;
    }
    repst *e = &o->eps[o->neps_st++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", ep);
    return e;
}

static const redisReply *field(const redisReply *fv, const char *name) {
    if (!fv || fv->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < fv->elements; i += 2) {
        const redisReply *k = fv->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == strlen(name) && !memcmp(k->str, name, k->len))
            return fv->element[i + 1]->type == REDIS_REPLY_STRING ? fv->element[i + 1] : NULL;
    }
    return NULL;
}

/* Copy a field; -1 when absent, or (strict) when it does not fit. A
 * non-strict field is cut to fit (rule and key are used for filtering and
 * ordering only; two keys cut to the same prefix are just ordered together). */
static int copy_field(const redisReply *fv, const char *name, char *dst, size_t n, int strict) {
    const redisReply *v = field(fv, name);
    if (!v || (strict && v->len >= n)) return -1;
    size_t l = v->len < n ? v->len : n - 1;
    memcpy(dst, v->str, l);
    dst[l] = '\0';
    return 0;
}

/* Fill e from one stream entry [id, [f, v, …]]. -1: malformed (missing
 * fields); -2: out of memory. */
static int parse_entry(const redisReply *ent, vigil_alert_record *e) {
    memset(e, 0, sizeof *e);
    const redisReply *id = ent->element[0], *fv = ent->element[1];
    sid x;
    if (id->len >= sizeof e->ref || sid_parse(id->str, id->len, &x) != 0) return -1;
    memcpy(e->ref, id->str, id->len);
    e->ref[id->len] = '\0';
    e->appended_ms = (long long)x.ms;
    char mode[16] = "";
    const redisReply *js = field(fv, "json");
    if (copy_field(fv, "id", e->id, sizeof e->id, 1) || copy_field(fv, "rule", e->rule, sizeof e->rule, 0) ||
        copy_field(fv, "severity", e->severity, sizeof e->severity, 0) ||
        copy_field(fv, "key", e->key, sizeof e->key, 0) || !js || !e->id[0]) {
        /* keep what we have for the dead letter */
        if (js && (e->json = malloc(js->len + 1))) {
            memcpy(e->json, js->str, js->len);
            e->json[js->len] = '\0';
            e->len = js->len;
        }
        return -1;
    }
    copy_field(fv, "mode", mode, sizeof mode, 0);
    e->mode = !strcmp(mode, "shadow") ? VIGIL_MODE_SHADOW : VIGIL_MODE_ACTIVE;
    e->json = malloc(js->len + 1);
    if (!e->json) return -2;
    memcpy(e->json, js->str, js->len);
    e->json[js->len] = '\0';
    e->len = js->len;
    return 0;
}

/* MULTI; XADD deadletter …; XACK; EXEC on k. */
static vigil_status dead_on(call *k, const char *ep, const vigil_alert_record *e, const char *reason,
                            int attempts, vigil_error *err) {
    rob *o = k->o;
    char att[16], ts[40];
    snprintf(att, sizeof att, "%d", attempts);
    vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
    if (!reason) reason = "";
    const char *json = e->json ? e->json : "null";
    size_t jlen = e->json ? e->len : 4;
    const char *xadd[] = {"XADD", o->dead, "MAXLEN", "~", DEAD_MAXLEN, "*", "endpoint", ep,
                          "alert_id", e->id, "rule", e->rule, "key", e->key, "reason", reason,
                          "attempts", att, "dead_at", ts, "alert", json};
    size_t xl[22];
    for (int i = 0; i < 22; i++) xl[i] = strlen(xadd[i]);
    xl[21] = jlen;
    const char *ack[] = {"XACK", o->stream, ep, e->ref};
    size_t al[] = {4, strlen(o->stream), strlen(ep), strlen(e->ref)};
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    size_t ml[] = {5}, el[] = {4};
    const vigil_redis_cmd cmds[4] = {{1, multi, ml}, {22, xadd, xl}, {4, ack, al}, {1, exec, el}};
    redisReply *rep[4];
    vigil_status s = vigil_redis_pipeline(k->r, cmds, 4, rep, "dead letter", err);
    if (s != VIGIL_OK) return s;
    for (int i = 0; i < 4; i++) {
        redisReply *r = rep[i];
        if (s == VIGIL_OK && (r->type == REDIS_REPLY_ERROR || (i == 3 && r->type != REDIS_REPLY_ARRAY)))
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: dead letter: %.*s", vigil_redis_where(k->r),
                                r->type == REDIS_REPLY_ERROR ? (int)r->len : 11,
                                r->type == REDIS_REPLY_ERROR ? r->str : "EXEC failed");
    }
    vigil_redis_free_replies(rep, 4);
    return s;
}

/* XREADGROUP into out; *n entries kept. *raw = entries in the reply
 * (deleted ones included), *last = the last id seen. Deleted pending
 * entries (nil fields) are acked; malformed ones dead-lettered. */
static vigil_status xread(call *k, const char *ep, const char *from, int max, int block_ms,
                          const sid *after, vigil_alert_record *out, int *n, int *raw, sid *last,
                          vigil_error *err) {
    rob *o = k->o;
    char cnt[16], blk[16];
    snprintf(cnt, sizeof cnt, "%d", max);
    snprintf(blk, sizeof blk, "%d", block_ms);
    const char *av[12];
    size_t al[12];
    int ac = 0;
#define ARG(s) (av[ac] = (s), al[ac] = strlen(av[ac]), ac++)
    ARG("XREADGROUP"); ARG("GROUP"); ARG(ep); ARG(CONSUMER); ARG("COUNT"); ARG(cnt);
    if (block_ms > 0) {
        ARG("BLOCK"); ARG(blk);
    }
    ARG("STREAMS"); ARG(o->stream); ARG(from);
#undef ARG
    *n = 0;
    *raw = 0;
    redisReply *r = NULL;
    vigil_status s = VIGIL_OK;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (block_ms > 0) vigil_redis_set_wait(k->r, block_ms);
        s = cmd(k, &r, 1, ac, av, al, err);
        if (block_ms > 0) vigil_redis_set_wait(k->r, 0);
        if (s == VIGIL_ESTORE && is_err(r, "NOGROUP")) {
            rfree(r);
            r = NULL;
            s = create_group(k, ep, err);
            if (s != VIGIL_OK) return s;
            continue;
        }
        break;
    }
    if (s != VIGIL_OK) {
        rfree(r);
        return s;
    }
    /* nil: nothing (a BLOCK timeout, or ">" with nothing new) */
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
        const redisReply *st = r->element[0];
        const redisReply *ents = st->type == REDIS_REPLY_ARRAY && st->elements == 2 ? st->element[1] : NULL;
        for (size_t i = 0; ents && ents->type == REDIS_REPLY_ARRAY && i < ents->elements; i++) {
            const redisReply *ent = ents->element[i];
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 ||
                ent->element[0]->type != REDIS_REPLY_STRING)
                continue;
            sid x;
            if (sid_parse(ent->element[0]->str, ent->element[0]->len, &x) != 0) continue;
            (*raw)++;
            *last = x;
            if (ent->element[1]->type != REDIS_REPLY_ARRAY) {
                /* pending but trimmed or deleted: nothing to deliver any more */
                const char *xa[] = {"XACK", o->stream, ep, ent->element[0]->str};
                size_t xl[] = {4, strlen(o->stream), strlen(ep), ent->element[0]->len};
                redisReply *ar;
                if (cmd(k, &ar, 0, 4, xa, xl, NULL) == VIGIL_OK) rfree(ar);
                continue;
            }
            if (after && sid_cmp(x, *after) <= 0) continue;
            vigil_alert_record *e = &out[*n];
            int pr = parse_entry(ent, e);
            if (pr == -2) {
                vigil_alert_record_free(e);
                s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
                break;
            }
            if (pr == -1) {
                fprintf(stderr, "vigil: outbox %s: entry %s lacks id/rule/severity/key/json: "
                                "dead-lettered\n", o->stream, e->ref);
                vigil_status ds = dead_on(k, ep, e, "malformed outbox entry", 0, NULL);
                vigil_alert_record_free(e);
                if (ds == VIGIL_EUNAVAILABLE) {
                    s = vigil_error_set(err, ds, "Redis %s: connection lost", vigil_redis_where(k->r));
                    break;
                }
                continue;
            }
            (*n)++;
        }
    }
    rfree(r);
    if (s != VIGIL_OK) {
        for (int i = 0; i < *n; i++) vigil_alert_record_free(&out[i]);
        *n = 0;
    }
    return s;
}

static vigil_status r_read(vigil_outbox *ob, const char *ep, const char *after,
                           vigil_alert_record *out, int max, int *n, int wait_ms, vigil_error *err) {
    rob *o = (rob *)ob;
    sid aft = {0, 0};
    int have_after = after && *after;
    if (n) *n = 0;
    if (!o || !ep || !*ep || strlen(ep) > MAX_EP_NAME || !out || !n || max <= 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad argument");
    if (have_after && sid_parse(after, strlen(after), &aft) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad position '%s'", after);

    pthread_mutex_lock(&o->mu);
    repst *st = ep_state(o, ep);
    int need_scan = !st || !have_after || !st->scanned || sid_cmp(aft, st->high) < 0;
    pthread_mutex_unlock(&o->mu);
    if (!st) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");

    call k;
    vigil_status s = get(o, &k, err);
    if (s != VIGIL_OK) return s;
    int got = 0, raw = 0, scanned_empty = 0;
    sid last = aft;
    /* 1. pending entries after `after` (read before, never acked) */
    if (need_scan) {
        sid cur = aft;
        for (int page = 0; page < PEL_SCANS_MAX; page++) {
            char from[48];
            sid_fmt(cur, from, sizeof from);
            s = xread(&k, ep, from, max, 0, NULL, out, &got, &raw, &last, err);
            if (s != VIGIL_OK || got > 0) break;
            if (raw == 0) {
                scanned_empty = 1;
                break;
            }
            cur = last;        /* only deleted entries: page on */
        }
    }
    /* 2. new entries, once nothing is pending after `after` */
    if (s == VIGIL_OK && got == 0 && (scanned_empty || !need_scan))
        s = xread(&k, ep, ">", max, wait_ms, have_after ? &aft : NULL, out, &got, &raw, &last, err);
    pthread_mutex_lock(&o->mu);
    st = ep_state(o, ep);
    if (st) {
        if (s != VIGIL_OK) {
            /* entries may have reached our pending list without reaching
             * the caller: scan it again next time */
            st->scanned = 0;
        } else {
            if (scanned_empty) {
                st->scanned = 1;
                st->high = aft;
            }
            if (raw && sid_cmp(last, st->high) > 0) st->high = last;
        }
    }
    pthread_mutex_unlock(&o->mu);
    put(&k);
    *n = got;
    return s;
}

/* ---- trimming ------------------------------------------------------------ */

/* Flat [k, v, k, v…] lookup in an XINFO reply. */
static const redisReply *info_get(const redisReply *m, const char *name) {
    if (!m || m->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < m->elements; i += 2) {
        const redisReply *k = m->element[i];
        if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) && k->len == strlen(name) &&
            !memcmp(k->str, name, k->len))
            return m->element[i + 1];
    }
    return NULL;
}

static const redisReply *find_group(const redisReply *groups, const char *ep) {
    for (size_t i = 0; groups && groups->type == REDIS_REPLY_ARRAY && i < groups->elements; i++) {
        const redisReply *nm = info_get(groups->element[i], "name");
        if (nm && nm->type == REDIS_REPLY_STRING && nm->len == strlen(ep) && !memcmp(nm->str, ep, nm->len))
            return groups->element[i];
    }
    return NULL;
}

static long long info_int(const redisReply *v, int *known) {
    *known = 1;
    if (v && v->type == REDIS_REPLY_INTEGER) return v->integer;
    if (v && v->type == REDIS_REPLY_STRING) return strtoll(v->str, NULL, 10);
    *known = 0;
    return 0;
}

static vigil_status trim_on(call *k, vigil_error *err) {
    rob *o = k->o;
    if (o->neps == 0) return VIGIL_OK;
    const char *av[] = {"XINFO", "GROUPS", o->stream};
    size_t al[] = {5, 6, strlen(o->stream)};
    redisReply *groups;
    vigil_status s = cmd(k, &groups, 1, 3, av, al, err);
    if (s == VIGIL_ESTORE && groups && groups->str && strstr(groups->str, "no such key")) s = VIGIL_OK;
    if (s != VIGIL_OK || groups->type != REDIS_REPLY_ARRAY) {
        rfree(groups);
        return s;
    }
    sid min = {UINT64_MAX, UINT64_MAX};
    for (int i = 0; s == VIGIL_OK && i < o->neps; i++) {
        const redisReply *g = find_group(groups, o->names[i]);
        int known;
        if (!g) {   /* will be created at 0 and needs everything */
            min.ms = min.seq = 0;
            break;
        }
        long long pending = info_int(info_get(g, "pending"), &known);
        const redisReply *ld = info_get(g, "last-delivered-id");
        sid cand;
        if (!ld || ld->type != REDIS_REPLY_STRING || sid_parse(ld->str, ld->len, &cand) != 0) {
            min.ms = min.seq = 0;
            break;
        }
        cand = sid_next(cand);
        if (pending > 0 || !known) {
            const char *pv[] = {"XPENDING", o->stream, o->names[i]};
            size_t pl[] = {8, strlen(o->stream), strlen(o->names[i])};
            redisReply *p;
            s = cmd(k, &p, 0, 3, pv, pl, err);
            if (s != VIGIL_OK) break;
            sid small;
            if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2 && p->element[1]->type == REDIS_REPLY_STRING &&
                sid_parse(p->element[1]->str, p->element[1]->len, &small) == 0 && sid_cmp(small, cand) < 0)
                cand = small;
            rfree(p);
        }
        if (sid_cmp(cand, min) < 0) min = cand;
    }
    rfree(groups);
    if (s != VIGIL_OK || (min.ms == 0 && min.seq == 0) || min.ms == UINT64_MAX) return s;
    char mid[48];
    sid_fmt(min, mid, sizeof mid);
    const char *tv[] = {"XTRIM", o->stream, "MINID", mid};
    size_t tl[] = {5, strlen(o->stream), 5, strlen(mid)};
    redisReply *t;
    s = cmd(k, &t, 0, 4, tv, tl, err);
    if (s == VIGIL_OK) rfree(t);
    return s;
}

vigil_status vigil_outbox_redis_trim(vigil_outbox *ob, vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || o->magic != ROB_MAGIC) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a Redis outbox");
    call k;
    vigil_status s = get(o, &k, err);
    if (s != VIGIL_OK) return s;
    s = trim_on(&k, err);
    put(&k);
    return s;
}

/* ---- interface ----------------------------------------------------------- */

static vigil_status r_ack(vigil_outbox *ob, const char *ep, const char *const *refs, int n,
                          vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || !ep || !*ep || n < 0 || (n > 0 && !refs))
        return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad argument");
    if (n == 0) return VIGIL_OK;
    const char **av = malloc(((size_t)n + 3) * sizeof *av);
    size_t *al = malloc(((size_t)n + 3) * sizeof *al);
    if (!av || !al) {
        free(av);
        free(al);
        return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    }
    av[0] = "XACK"; al[0] = 4;
    av[1] = o->stream; al[1] = strlen(o->stream);
    av[2] = ep; al[2] = strlen(ep);
    for (int i = 0; i < n; i++) {
        sid x;
        if (!refs[i] || sid_parse(refs[i], strlen(refs[i]), &x) != 0) {
            vigil_status s = vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad position '%s'",
                                             refs[i] ? refs[i] : "(null)");
            free(av);
            free(al);
            return s;
        }
        av[3 + i] = refs[i];
        al[3 + i] = strlen(refs[i]);
    }
    call k;
    vigil_status s = get(o, &k, err);
    if (s == VIGIL_OK) {
        redisReply *r;
        s = cmd(&k, &r, 1, n + 3, av, al, err);
        if (s == VIGIL_ESTORE && is_err(r, "NOGROUP")) s = VIGIL_OK;   /* nothing left to ack */
        rfree(r);
        if (s == VIGIL_OK) {
            long long now = mono_ms();
            int due = 0;
            pthread_mutex_lock(&o->mu);
            if (now - o->last_trim_ms >= TRIM_EVERY_MS) {
                o->last_trim_ms = now;
                due = 1;
            }
            pthread_mutex_unlock(&o->mu);
            vigil_error terr;
            if (due && trim_on(&k, &terr) != VIGIL_OK)
                fprintf(stderr, "vigil: outbox trim: %s\n", terr.msg);
        }
        put(&k);
    }
    free(av);
    free(al);
    return s;
}

static vigil_status r_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e,
                           const char *reason, int attempts, vigil_error *err) {
    rob *o = (rob *)ob;
    sid x;
    if (!o || !ep || !*ep || !e || sid_parse(e->ref, strlen(e->ref), &x) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox dead: bad argument");
    call k;
    vigil_status s = get(o, &k, err);
    if (s != VIGIL_OK) return s;
    s = dead_on(&k, ep, e, reason, attempts, err);
    put(&k);
    return s;
}

/* One dead-letter stream entry as the JSON object of outbox.h. */
static cJSON *dead_obj(const redisReply *fv) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    static const char *const str_fields[] = {"endpoint", "alert_id", "rule", "key", "reason", "dead_at"};
    for (size_t i = 0; i < sizeof str_fields / sizeof *str_fields; i++) {
        const redisReply *v = field(fv, str_fields[i]);
        char *t = v ? strndup(v->str, v->len) : NULL;
        cJSON_AddStringToObject(o, str_fields[i], t ? t : "");
        free(t);
    }
    const redisReply *at = field(fv, "attempts");
    cJSON_AddNumberToObject(o, "attempts", at ? strtol(at->str, NULL, 10) : 0);
    const redisReply *al = field(fv, "alert");
    cJSON *a = al ? cJSON_ParseWithLength(al->str, al->len) : NULL;
    if (!a && al) {
        char *t = strndup(al->str, al->len);
        a = cJSON_CreateString(t ? t : "");
        free(t);
    }
    cJSON_AddItemToObject(o, "alert", a ? a : cJSON_CreateNull());
    return o;
}

static vigil_status r_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json,
                                vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || !json) return vigil_error_set(err, VIGIL_EINVAL, "outbox list_dead: bad argument");
    *json = NULL;
    if (limit <= 0) limit = DEAD_LIMIT_DEFAULT;
    if (limit > DEAD_LIMIT_MAX) limit = DEAD_LIMIT_MAX;
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    call k;
    vigil_status s = get(o, &k, err);
    if (s != VIGIL_OK) {
        cJSON_Delete(arr);
        return s;
    }
    char end[48] = "+", cnt[16];
    int found = 0, scanned = 0;
    int page = ep ? 500 : limit;
    snprintf(cnt, sizeof cnt, "%d", page);
    while (s == VIGIL_OK && found < limit && scanned < DEAD_SCAN_MAX) {
        const char *av[] = {"XREVRANGE", o->dead, end, "-", "COUNT", cnt};
        size_t al[] = {9, strlen(o->dead), strlen(end), 1, 5, strlen(cnt)};
        redisReply *r;
        s = cmd(&k, &r, 0, 6, av, al, err);
        if (s != VIGIL_OK) break;
        size_t ne = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        sid lastid = {0, 0};
        int have_last = 0;
        for (size_t i = 0; i < ne && found < limit; i++) {
            const redisReply *ent = r->element[i];
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2) continue;
            if (ent->element[0]->type == REDIS_REPLY_STRING &&
                sid_parse(ent->element[0]->str, ent->element[0]->len, &lastid) == 0)
                have_last = 1;
            scanned++;
            const redisReply *e = field(ent->element[1], "endpoint");
            if (ep && !(e && e->len == strlen(ep) && !memcmp(e->str, ep, e->len))) continue;
            cJSON *d = dead_obj(ent->element[1]);
            if (d) {
                cJSON_AddItemToArray(arr, d);
                found++;
            }
        }
        rfree(r);
        sid prev;
        if (ne < (size_t)page || !have_last || sid_prev(lastid, &prev) != 0) break;
        sid_fmt(prev, end, sizeof end);
    }
    put(&k);
    if (s != VIGIL_OK) {
        cJSON_Delete(arr);
        return s;
    }
    char *txt = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!txt) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    *json = strdup(txt);
    cJSON_free(txt);
    return *json ? VIGIL_OK : vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
}

static vigil_status r_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || !ep || !*ep || !n) return vigil_error_set(err, VIGIL_EINVAL, "outbox depth: bad argument");
    *n = 0;
    call k;
    vigil_status s = get(o, &k, err);
    if (s != VIGIL_OK) return s;
    const char *av[] = {"XINFO", "GROUPS", o->stream};
    size_t al[] = {5, 6, strlen(o->stream)};
    redisReply *groups;
    s = cmd(&k, &groups, 1, 3, av, al, err);
    if (s == VIGIL_ESTORE && groups && groups->str && strstr(groups->str, "no such key")) {
        rfree(groups);   /* no stream: nothing waits */
        put(&k);
        return VIGIL_OK;
    }
    if (s != VIGIL_OK) {
        rfree(groups);
        put(&k);
        return s;
    }
    const redisReply *g = find_group(groups, ep);
    char from[48] = "-";
    int count_after = 0;
    long long pending = 0;
    if (!g) {
        count_after = 1;   /* created at 0 on the first read: the whole stream waits */
    } else {
        int known_p, known_l;
        pending = info_int(info_get(g, "pending"), &known_p);
        long long lag = info_int(info_get(g, "lag"), &known_l);
        if (known_l && lag >= 0) {
            *n = (uint64_t)pending + (uint64_t)lag;
        } else {
            const redisReply *ld = info_get(g, "last-delivered-id");
            sid x;
            if (ld && ld->type == REDIS_REPLY_STRING && sid_parse(ld->str, ld->len, &x) == 0)
                sid_fmt(sid_next(x), from, sizeof from);
            count_after = 1;
        }
    }
    rfree(groups);
    if (count_after) {
        if (!g) {
            const char *xv[] = {"XLEN", o->stream};
            size_t xl[] = {4, strlen(o->stream)};
            redisReply *r;
            s = cmd(&k, &r, 0, 2, xv, xl, err);
            if (s == VIGIL_OK) {
                *n = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
                rfree(r);
            }
        } else {
            char cnt[16];
            snprintf(cnt, sizeof cnt, "%d", LAG_COUNT_MAX);
            const char *xv[] = {"XRANGE", o->stream, from, "+", "COUNT", cnt};
            size_t xl[] = {6, strlen(o->stream), strlen(from), 1, 5, strlen(cnt)};
            redisReply *r;
            s = cmd(&k, &r, 0, 6, xv, xl, err);
            if (s == VIGIL_OK) {
                *n = (uint64_t)pending + (r->type == REDIS_REPLY_ARRAY ? r->elements : 0);
                rfree(r);
            }
        }
    }
    put(&k);
    return s;
}

static void r_destroy(vigil_outbox *ob) {
    rob *o = (rob *)ob;
    if (!o) return;
    pool_free(o->pool);
    o->pool = NULL;
    vigil_redis_destroy(o->proto);
    for (int i = 0; i < o->neps; i++) free(o->names[i]);
    free(o->names);
    free(o->eps);
    free(o->stream);
    free(o->dead);
    pthread_mutex_destroy(&o->mu);
    o->magic = 0;
    free(o);
}

vigil_status vigil_outbox_redis_open(const char *url, const char *prefix, const char *const *endpoints,
                                     int nendpoints, vigil_outbox **out, vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "outbox: NULL argument");
    *out = NULL;
    if (!url || nendpoints < 0 || (nendpoints > 0 && !endpoints))
        return vigil_error_set(err, VIGIL_EINVAL, "outbox: bad URL or endpoint list");
    for (int i = 0; i < nendpoints; i++)
        if (!endpoints[i] || !*endpoints[i] || strlen(endpoints[i]) > MAX_EP_NAME)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint name %d empty or over %d bytes",
                                   i + 1, MAX_EP_NAME);
    if (!prefix) prefix = "vigil";
    rob *o = calloc(1, sizeof *o);
    if (!o) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    o->magic = ROB_MAGIC;
    pthread_mutex_init(&o->mu, NULL);
    o->base.read = r_read;
    o->base.ack = r_ack;
    o->base.dead = r_dead;
    o->base.list_dead = r_list_dead;
    o->base.depth = r_depth;
    o->base.destroy = r_destroy;
    vigil_status s = vigil_redis_create(url, NULL, &o->proto, err);
    if (s == VIGIL_OK) {
        size_t n = strlen(prefix) + 16;
        o->stream = malloc(n);
        o->dead = malloc(n);
        o->names = nendpoints ? calloc((size_t)nendpoints, sizeof *o->names) : NULL;
        if (!o->stream || !o->dead || (nendpoints && !o->names)) s = VIGIL_ENOMEM;
        else {
            snprintf(o->stream, n, "%s:outbox", prefix);
            snprintf(o->dead, n, "%s:deadletter", prefix);
        }
        for (int i = 0; s == VIGIL_OK && i < nendpoints; i++) {
            if (!(o->names[i] = strdup(endpoints[i]))) s = VIGIL_ENOMEM;
            o->neps = i + 1;
        }
        if (s == VIGIL_ENOMEM) vigil_error_set(err, s, "outbox: out of memory");
    }
    if (s == VIGIL_OK) {
        call k;
        s = get(o, &k, err);
        for (int i = 0; s == VIGIL_OK && i < nendpoints; i++) s = create_group(&k, endpoints[i], err);
        put(&k);
    }
    if (s != VIGIL_OK) {
        r_destroy(&o->base);
        return s;
    }
    *out = &o->base;
    return VIGIL_OK;
}

int vigil_outbox_redis_xadd_args(const char *stream, const vigil_alert_record *a, const char **argv,
                                 size_t *lens) {
    const char *v[VIGIL_OUTBOX_XADD_ARGC] = {"XADD", stream, "*", "id", a->id, "rule", a->rule,
                                             "severity", a->severity, "key", a->key, "mode",
                                             a->mode == VIGIL_MODE_SHADOW ? "shadow" : "active", "json", a->json};
    for (int i = 0; i < VIGIL_OUTBOX_XADD_ARGC; i++) {
        argv[i] = v[i];
        lens[i] = i == VIGIL_OUTBOX_XADD_ARGC - 1 ? a->len : strlen(v[i]);
    }
    return VIGIL_OUTBOX_XADD_ARGC;
}

vigil_status vigil_outbox_redis_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n,
                                       vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || o->magic != ROB_MAGIC) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a Redis outbox");
    if (n < 0 || (n > 0 && !alerts)) return vigil_error_set(err, VIGIL_EINVAL, "outbox append: bad argument");
    for (int i = 0; i < n; i++)
        if (!alerts[i].id[0] || !alerts[i].json)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %d lacks an id or JSON", i + 1);
    if (n == 0) return VIGIL_OK;
    call k;
    vigil_status s = get(o, &k, err);
    if (s != VIGIL_OK) return s;
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    size_t ml[] = {5}, el[] = {4};
    const vigil_redis_cmd mc = {1, multi, ml}, ec = {1, exec, el};
    s = vigil_redis_append(k.r, &mc, err);
    for (int i = 0; s == VIGIL_OK && i < n; i++) {
        const char *av[VIGIL_OUTBOX_XADD_ARGC];
        size_t al[VIGIL_OUTBOX_XADD_ARGC];
        int ac = vigil_outbox_redis_xadd_args(o->stream, &alerts[i], av, al);
        const vigil_redis_cmd xc = {ac, av, al};
        s = vigil_redis_append(k.r, &xc, err);
    }
    if (s == VIGIL_OK) s = vigil_redis_append(k.r, &ec, err);
    if (s != VIGIL_OK) vigil_redis_disconnect(k.r);   /* never leave half a transaction buffered */
    /* read every reply, whatever they say, to keep the connection in sync */
    for (int i = 0; vigil_redis_connected(k.r) && i < n + 2; i++) {
        redisReply *r = NULL;
        vigil_status rs = vigil_redis_read(k.r, &r, "append", err);
        if (rs != VIGIL_OK) {
            s = rs;
            break;
        }
        if (s == VIGIL_OK && (r->type == REDIS_REPLY_ERROR || (i == n + 1 && r->type != REDIS_REPLY_ARRAY)))
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: append: %.*s", vigil_redis_where(k.r),
                                r->type == REDIS_REPLY_ERROR ? (int)r->len : 11,
                                r->type == REDIS_REPLY_ERROR ? r->str : "EXEC failed");
        rfree(r);
    }
    put(&k);
    return s;
}
