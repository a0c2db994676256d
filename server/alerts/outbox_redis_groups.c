/* outbox_redis_groups.c — what the Redis outbox's consumer groups still
 * need (outbox.h, outbox_redis_int.h): trimming the stream and an
 * endpoint's depth, both from XINFO GROUPS.
 *
 * Why it exists: XACK does not remove an entry from a stream, so without
 * trimming <prefix>:outbox would grow forever. At most once a second (from
 * ack, and on vigil_outbox_redis_trim) the stream is trimmed with XTRIM
 * MINID to the oldest entry that some configured endpoint still needs: its
 * oldest pending entry, else the one after its last-delivered id. Only the
 * endpoints given at open count, so a group left behind by a removed
 * endpoint does not hold the stream. The same group state answers depth
 * (an endpoint's backlog, for metrics): pending + lag (Redis 7); when lag
 * is unknown, the entries after last-delivered-id are counted (up to
 * 100000).
 *
 * Connections and commands are outbox_redis.c's (vrob_get, vrob_cmd). */
#define _GNU_SOURCE
#include "outbox_redis_int.h"

#include <stdlib.h>
#include <string.h>

#define LAG_COUNT_MAX 100000

/* ---- XINFO GROUPS replies ------------------------------------------------ */

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

/* ---- trimming ------------------------------------------------------------ */

vigil_status vrob_trim_on(call *k, const char *stream, vigil_error *err) {
    rob *o = k->o;
    if (o->neps == 0) return VIGIL_OK;
    const char *av[] = {"XINFO", "GROUPS", stream};
    size_t al[] = {5, 6, strlen(stream)};
    redisReply *groups;
    vigil_status s = vrob_cmd(k, &groups, 1, 3, av, al, err);
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
            const char *pv[] = {"XPENDING", stream, o->names[i]};
            size_t pl[] = {8, strlen(stream), strlen(o->names[i])};
            redisReply *p;
            s = vrob_cmd(k, &p, 0, 3, pv, pl, err);
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
    const char *tv[] = {"XTRIM", stream, "MINID", mid};
    size_t tl[] = {5, strlen(stream), 5, strlen(mid)};
    redisReply *t;
    s = vrob_cmd(k, &t, 0, 4, tv, tl, err);
    if (s == VIGIL_OK) rfree(t);
    return s;
}

vigil_status vigil_outbox_redis_trim(vigil_outbox *ob, vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || o->magic != ROB_MAGIC) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a Redis outbox");
    call k;
    vigil_status s = vrob_get(o, &k, err);
    if (s != VIGIL_OK) return s;
    s = vrob_trim_on(&k, o->stream, err);
    vrob_put(&k);
    return s;
}

/* ---- depth --------------------------------------------------------------- */

vigil_status vrob_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    rob *o = (rob *)ob;
    if (!o || !ep || !*ep || !n) return vigil_error_set(err, VIGIL_EINVAL, "outbox depth: bad argument");
    *n = 0;
    call k;
    vigil_status s = vrob_get(o, &k, err);
    if (s != VIGIL_OK) return s;
    s = vrob_depth_on(&k, o->stream, ep, n, err);
    vrob_put(&k);
    return s;
}

vigil_status vrob_depth_on(call *k, const char *stream, const char *ep, uint64_t *n, vigil_error *err) {
    *n = 0;
    vigil_status s;
    const char *av[] = {"XINFO", "GROUPS", stream};
    size_t al[] = {5, 6, strlen(stream)};
    redisReply *groups;
    s = vrob_cmd(k, &groups, 1, 3, av, al, err);
    if (s == VIGIL_ESTORE && groups && groups->str && strstr(groups->str, "no such key")) {
        rfree(groups);   /* no stream: nothing waits */
        return VIGIL_OK;
    }
    if (s != VIGIL_OK) {
        rfree(groups);
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
            const char *xv[] = {"XLEN", stream};
            size_t xl[] = {4, strlen(stream)};
            redisReply *r;
            s = vrob_cmd(k, &r, 0, 2, xv, xl, err);
            if (s == VIGIL_OK) {
                *n = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
                rfree(r);
            }
        } else {
            char cnt[16];
            snprintf(cnt, sizeof cnt, "%d", LAG_COUNT_MAX);
            const char *xv[] = {"XRANGE", stream, from, "+", "COUNT", cnt};
            size_t xl[] = {6, strlen(stream), strlen(from), 1, 5, strlen(cnt)};
            redisReply *r;
            s = vrob_cmd(k, &r, 0, 6, xv, xl, err);
            if (s == VIGIL_OK) {
                *n = (uint64_t)pending + (r->type == REDIS_REPLY_ARRAY ? r->elements : 0);
                rfree(r);
            }
        }
    }
    return s;
}
