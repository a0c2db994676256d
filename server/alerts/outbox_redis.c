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
 * Three files, one job each (outbox_redis_int.h): this one holds the
 * connections, the consumer groups, reading and acking, the writer side
 * and open; outbox_redis_dead.c the dead-letter stream;
 * outbox_redis_groups.c trimming and depth (what the groups still need).
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
#include "vigil/event.h"
#include "outbox_redis_int.h"
#include "server/common/log.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CONSUMER "vigil"
#define POOL_MAX 32                /* idle connections kept */
#define TRIM_EVERY_MS 1000
#define PEL_SCANS_MAX 64           /* pages of deleted pending entries skipped per read */

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connections --------------------------------------------------------- */

/* Free idle pool members. */
static void pool_free(rconn *list) {
    while (list) {
        rconn *next = list->next;
        vigil_redis_destroy(list->r);
        free(list);
        list = next;
    }
}

vigil_status vrob_get(rob *o, call *k, vigil_error *err) {
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

void vrob_put(call *k) {
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
vigil_status vrob_cmd(call *k, redisReply **out, int keep_err, int argc, const char **argv, const size_t *lens,
                      vigil_error *err) {
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

vigil_status vrob_create_group(call *k, const char *stream, const char *ep, vigil_error *err) {
    const char *av[] = {"XGROUP", "CREATE", stream, ep, "0", "MKSTREAM"};
    size_t al[] = {6, 6, strlen(stream), strlen(ep), 1, 8};
    redisReply *r;
    vigil_status s = vrob_cmd(k, &r, 1, 6, av, al, err);
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

const redisReply *vrob_field(const redisReply *fv, const char *name) {
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
    const redisReply *v = vrob_field(fv, name);
    if (!v || (strict && v->len >= n)) return -1;
    size_t l = v->len < n ? v->len : n - 1;
    memcpy(dst, v->str, l);
    dst[l] = '\0';
    return 0;
}

int vrob_parse_entry(const redisReply *ent, vigil_alert_record *e) {
    memset(e, 0, sizeof *e);
    const redisReply *id = ent->element[0], *fv = ent->element[1];
    sid x;
    if (id->len >= sizeof e->ref || sid_parse(id->str, id->len, &x) != 0) return -1;
    memcpy(e->ref, id->str, id->len);
    e->ref[id->len] = '\0';
    e->appended_ms = (long long)x.ms;
    char mode[16] = "";
    const redisReply *js = vrob_field(fv, "json");
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
        s = vrob_cmd(k, &r, 1, ac, av, al, err);
        if (block_ms > 0) vigil_redis_set_wait(k->r, 0);
        if (s == VIGIL_ESTORE && is_err(r, "NOGROUP")) {
            rfree(r);
            r = NULL;
            s = vrob_create_group(k, o->stream, ep, err);
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
                if (vrob_cmd(k, &ar, 0, 4, xa, xl, NULL) == VIGIL_OK) rfree(ar);
                continue;
            }
            if (after && sid_cmp(x, *after) <= 0) continue;
            vigil_alert_record *e = &out[*n];
            int pr = vrob_parse_entry(ent, e);
            if (pr == -2) {
                vigil_alert_record_free(e);
                s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
                break;
            }
            if (pr == -1) {
                vigil_log(VIGIL_LOG_WARN, "alerts", "outbox %s: entry %s lacks id/rule/severity/key/json: " "dead-lettered", o->stream, e->ref);
                vigil_status ds = vrob_dead_on(k, o->stream, e->ref, ep, e, "malformed outbox entry", 0, NULL);
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
    vigil_status s = vrob_get(o, &k, err);
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
    vrob_put(&k);
    *n = got;
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
    vigil_status s = vrob_get(o, &k, err);
    if (s == VIGIL_OK) {
        redisReply *r;
        s = vrob_cmd(&k, &r, 1, n + 3, av, al, err);
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
            if (due && vrob_trim_on(&k, o->stream, &terr) != VIGIL_OK)
                vigil_log(VIGIL_LOG_WARN, "alerts", "outbox trim: %s", terr.msg);
        }
        vrob_put(&k);
    }
    free(av);
    free(al);
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

vigil_status vrob_open(const char *url, const char *prefix, const vigil_redis_opts *opts,
                       const char *const *endpoints, int nendpoints, int create_groups, rob **out, vigil_error *err) {
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
    o->base.dead = vrob_dead;
    o->base.list_dead = vrob_list_dead;
    o->base.depth = vrob_depth;
    o->base.destroy = r_destroy;
    vigil_status s = vigil_redis_create(url, opts, &o->proto, err);
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
    if (s == VIGIL_OK && create_groups) {
        call k;
        s = vrob_get(o, &k, err);
        for (int i = 0; s == VIGIL_OK && i < nendpoints; i++) s = vrob_create_group(&k, o->stream, endpoints[i], err);
        vrob_put(&k);
    }
    if (s != VIGIL_OK) {
        r_destroy(&o->base);
        return s;
    }
    *out = o;
    return VIGIL_OK;
}

vigil_status vigil_outbox_redis_open(const char *url, const char *prefix, const char *const *endpoints,
                                     int nendpoints, vigil_outbox **out, vigil_error *err) {
    rob *o = NULL;
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "outbox: NULL argument");
    *out = NULL;
    vigil_status s = vrob_open(url, prefix, NULL, endpoints, nendpoints, 1, &o, err);
    if (s == VIGIL_OK) *out = &o->base;
    return s;
}

int vigil_outbox_fields(const vigil_alert_record *a, const char **argv, size_t *lens) {
    const char *v[VIGIL_OUTBOX_FIELDS_ARGC] = {"id", a->id, "rule", a->rule, "severity", a->severity, "key", a->key,
                                               "mode", a->mode == VIGIL_MODE_SHADOW ? "shadow" : "active",
                                               "json", a->json};
    for (int i = 0; i < VIGIL_OUTBOX_FIELDS_ARGC; i++) {
        argv[i] = v[i];
        lens[i] = i == VIGIL_OUTBOX_FIELDS_ARGC - 1 ? a->len : strlen(v[i]);
    }
    return VIGIL_OUTBOX_FIELDS_ARGC;
}

int vigil_outbox_redis_xadd_args(const char *stream, const vigil_alert_record *a, const char **argv,
                                 size_t *lens) {
    argv[0] = "XADD"; lens[0] = 4;
    argv[1] = stream; lens[1] = strlen(stream);
    argv[2] = "*"; lens[2] = 1;
    return 3 + vigil_outbox_fields(a, argv + 3, lens + 3);
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
    vigil_status s = vrob_get(o, &k, err);
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
    vrob_put(&k);
    return s;
}
