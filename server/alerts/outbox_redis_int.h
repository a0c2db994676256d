/* outbox_redis_int.h — the Redis outbox's private parts, shared by its three
 * files and by nothing else:
 *   outbox_redis.c         connections (the pool), consumer groups, reading
 *                          and acking per endpoint, the writer side, open;
 *   outbox_redis_dead.c    the dead-letter stream (<prefix>:deadletter):
 *                          writing a dead letter, listing the newest;
 *   outbox_redis_groups.c  what the consumer groups still need (XINFO
 *                          GROUPS): trimming the stream, an endpoint's depth.
 * The stream layout is described in outbox.h and at the top of
 * outbox_redis.c. */
#ifndef VIGIL_OUTBOX_REDIS_INT_H
#define VIGIL_OUTBOX_REDIS_INT_H

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "outbox.h"
#include "server/state/redis.h"

#define ROB_MAGIC 0x524f4258u      /* "XBOR" */
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

/* ---- stream ids ---------------------------------------------------------- */

/* "ms-seq" (or "ms") → id. -1 when malformed. */
static inline int sid_parse(const char *s, size_t n, sid *out) {
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

static inline int sid_cmp(sid a, sid b) {
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}

static inline sid sid_next(sid a) {
    if (a.seq == UINT64_MAX) {
        a.ms++;
        a.seq = 0;
    } else {
        a.seq++;
    }
    return a;
}

static inline int sid_prev(sid a, sid *out) {
    if (a.seq > 0) a.seq--;
    else if (a.ms > 0) {
        a.ms--;
        a.seq = UINT64_MAX;
    } else return -1;
    *out = a;
    return 0;
}

static inline void sid_fmt(sid a, char *buf, size_t n) {
    snprintf(buf, n, "%" PRIu64 "-%" PRIu64, a.ms, a.seq);
}

/* freeReplyObject, NULL-safe whatever the hiredis release. */
static inline void rfree(void *r) {
    if (r) freeReplyObject(r);
}

/* A call's connection: taken by vrob_get, given back by vrob_put. */
typedef struct call {
    rob *o;
    vigil_redis *r;          /* NULL when vrob_get failed */
} call;

/* ---- connections and commands (outbox_redis.c) --------------------------- */

/* Take a connection for one call (the pool's, or a new clone), connected.
 * VIGIL_EUNAVAILABLE when Redis cannot be reached. */
vigil_status vrob_get(rob *o, call *k, vigil_error *err);
/* Give it back: to the pool, or (broken) drop it and every idle one. */
void vrob_put(call *k);
/* One command. *out is the reply (caller frees) unless it is an error:
 * VIGIL_EUNAVAILABLE (no reply: the layer dropped the connection) or
 * VIGIL_ESTORE (an error reply; its text in err, and in *out when keep_err). */
vigil_status vrob_cmd(call *k, redisReply **out, int keep_err, int argc, const char **argv, const size_t *lens,
                      vigil_error *err);

/* XGROUP CREATE <stream> <ep> 0 MKSTREAM; BUSYGROUP is fine. */
vigil_status vrob_create_group(call *k, const char *stream, const char *ep, vigil_error *err);
/* Fill e from one stream entry [id, [f, v, …]] (e->ref = the stream id).
 * -1: malformed (missing fields; e may hold the json for a dead letter,
 * free it); -2: out of memory. */
int vrob_parse_entry(const redisReply *ent, vigil_alert_record *e);

/* An error reply starting with prefix ("NOGROUP", "BUSYGROUP"). */
static inline int is_err(const redisReply *r, const char *prefix) {
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* The string value of field `name` in a stream entry's [f, v, …]; NULL
 * when absent or not a string. Borrowed from fv. */
const redisReply *vrob_field(const redisReply *fv, const char *name);

/* A Redis outbox on url/prefix whose configured endpoints (they count for
 * trimming) are endpoints[0..n), timeouts opts (NULL: defaults); their groups on <prefix>:outbox are created
 * only when create_groups (vigil_outbox_redis_open). outbox_pairs.c opens
 * one without, for its connections and its dead letters. */
vigil_status vrob_open(const char *url, const char *prefix, const vigil_redis_opts *opts,
                       const char *const *endpoints, int nendpoints, int create_groups, rob **out, vigil_error *err);

/* ---- dead letters (outbox_redis_dead.c) ---------------------------------- */

/* MULTI; XADD <prefix>:deadletter …; XACK <stream> <ep> <id>; EXEC on k's
 * connection (id: e's entry in stream). */
vigil_status vrob_dead_on(call *k, const char *stream, const char *id, const char *ep, const vigil_alert_record *e,
                          const char *reason, int attempts, vigil_error *err);
/* The interface's dead and list_dead (outbox.h). */
vigil_status vrob_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e, const char *reason,
                       int attempts, vigil_error *err);
vigil_status vrob_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json, vigil_error *err);

/* ---- consumer groups' progress (outbox_redis_groups.c) ------------------- */

/* XTRIM stream MINID to the oldest entry a configured endpoint still needs. */
vigil_status vrob_trim_on(call *k, const char *stream, vigil_error *err);
/* The interface's depth (outbox.h); vrob_depth_on: of one stream, on k. */
vigil_status vrob_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err);
vigil_status vrob_depth_on(call *k, const char *stream, const char *ep, uint64_t *n, vigil_error *err);

#endif
