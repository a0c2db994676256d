/* redis_store.h — the Redis implementation of the state store (store.h).
 *
 * Per-key state lives in Redis when vigil runs with --redis: the engine keeps
 * a cache, loads the keys it lacks before a batch and writes the dirty ones
 * back after it. This store makes exactly one network round trip per call:
 * load() pipelines one GET per key and reads the replies; save() pipelines
 * MULTI, one SET (or DEL) per record, EXEC — atomic, all or nothing. Never one
 * round trip per event. It uses hiredis 0.14's synchronous API on its own
 * connection: create one store per worker thread (a store is not
 * thread-safe).
 *
 * Key layout (one Redis string per (key group, key)):
 *
 *     <prefix>:{<group_name>}:k:<key>        e.g. vigil:{customer_id}:k:596
 *
 * The braces are a Redis Cluster hash tag: every key of one group hashes to
 * the same slot, so a MULTI/EXEC over one group's keys stays legal on a
 * cluster. To spread a group over slots, the engine may put its partition in
 * the group name ("customer_id:p7" gives vigil:{customer_id:p7}:k:596, the
 * layout of DESIGN.md §3); the hash tag is always exactly the group name, so
 * a group name must not contain '{' or '}'. The key value is used byte for
 * byte (binary-safe). The value is the engine's record, byte for byte. TTL:
 * SET … PX ttl_ms when ttl_ms > 0, plain SET otherwise.
 *
 * Errors: the server unreachable, a timeout or a dropped connection give
 * VIGIL_EUNAVAILABLE; the connection is then dropped and the next call
 * reconnects (no crash, no retry loop inside a call). An error reply from
 * Redis (WRONGTYPE, OOM, EXECABORT, …) gives VIGIL_ESTORE. Both say what
 * happened in err->msg. After a failed save() whose EXEC may have reached
 * the server, the outcome is unknown: SETs are idempotent, so the caller
 * retries the whole batch. If load() fails, `found` is never called; every
 * found() call happens after all replies arrived, and found() must not call
 * back into the same store.
 *
 * Durability: Redis loses recent writes on a restart unless it runs with
 * appendonly yes and appendfsync always (see the operations docs). */
#ifndef VIGIL_REDIS_STORE_H
#define VIGIL_REDIS_STORE_H

#include <stdint.h>
#include "vigil/status.h"
#include "vigil/store.h"

/* Limits: a full Redis key (prefix, group and key) is at most this many
 * bytes, otherwise VIGIL_ETOOBIG. */
#define VIGIL_REDIS_MAX_KEY 4096

typedef struct vigil_redis_opts {
    int connect_timeout_ms;   /* 0: 2000 */
    int io_timeout_ms;        /* per call, 0: 5000 */
} vigil_redis_opts;

/* Counters since create, for metrics and benchmarks (round trips per 1000
 * events). A round trip is one load() or save() that went to the server
 * (calls with n == 0 make none); connection setup (AUTH, SELECT) is not
 * counted. */
typedef struct vigil_redis_stats {
    uint64_t round_trips;
    uint64_t loads, saves;    /* calls that made a round trip */
    uint64_t keys_loaded;     /* keys asked for by load() */
    uint64_t keys_found;      /* of those, present in Redis */
    uint64_t keys_saved;      /* SETs committed by save() */
    uint64_t keys_deleted;    /* DELs committed by save() */
    uint64_t errors;          /* calls that returned an error */
    uint64_t reconnects;      /* connections made after the first */
} vigil_redis_stats;

/* Parse redis://[[user]:password@]host[:port][/db] (port 6379 and db 0 by
 * default; "host" may be a bracketed IPv6 address). Any out-parameter may be
 * NULL. user/password are "" when absent. Errors: VIGIL_EPARSE with the
 * reason. */
vigil_status vigil_redis_url_parse(const char *url, char *host, size_t hostn, int *port, int *db,
                                   char *user, size_t usern, char *password, size_t passwordn,
                                   vigil_error *err);

/* Create a Redis store on `url` (see vigil_redis_url_parse) with key prefix
 * `prefix` (NULL: "vigil"; must not contain '{' or '}'). It connects now,
 * authenticates and selects the database: VIGIL_EUNAVAILABLE if the server
 * cannot be reached, VIGIL_ESTORE if it refuses AUTH/SELECT, VIGIL_EPARSE for
 * a bad URL. On success *out is a new store owned by the caller; release it
 * with (*out)->destroy(*out). */
vigil_status vigil_redis_store_create(const char *url, const char *prefix, vigil_store **out,
                                      vigil_error *err);

/* The same with timeouts; opts may be NULL (defaults). */
vigil_status vigil_redis_store_create_opts(const char *url, const char *prefix,
                                           const vigil_redis_opts *opts, vigil_store **out,
                                           vigil_error *err);

/* Copy the counters into *out. VIGIL_EINVAL if `st` is not a Redis store. */
vigil_status vigil_redis_store_stats(const vigil_store *st, vigil_redis_stats *out);

/* The Redis key of (group_name, key) in `st`, into buf of size n (no NUL
 * terminator in keys is assumed: the length goes to *len). For tests and
 * tools. VIGIL_ETOOBIG if it does not fit. */
vigil_status vigil_redis_store_key(const vigil_store *st, const char *group_name,
                                   const char *key, size_t keylen, char *buf, size_t n,
                                   size_t *len);

/* Connect to `url`, authenticate, select, PING, disconnect — for /healthz
 * and /readyz, from any thread (it uses its own connection, 1 s timeouts).
 * VIGIL_OK when the server answered PONG; VIGIL_EUNAVAILABLE when it cannot
 * be reached or did not answer in time; VIGIL_ESTORE for an error reply
 * (e.g. NOAUTH, LOADING); VIGIL_EPARSE for a bad URL. */
vigil_status vigil_redis_ping(const char *url, vigil_error *err);

/* ---- the server's commit (issue 4: effectively-once state) ----------------
 *
 * With partitions > 0 the hash tag of a key is {<group>:p<n>}, n =
 * vigil_hash(key) % partitions (DESIGN.md §3: vigil:{customer_id:p7}:k:596),
 * and each (group, partition) has an offset record
 *     <prefix>:{<group>:p<n>}:offset = "<stream seq> <watermark ms>"
 * naming the last source message whose events for that pair are applied. */
vigil_status vigil_redis_store_set_partitions(vigil_store *st, int partitions);

typedef struct vigil_redis_offset {
    const char *group_name;
    int partition;
    uint64_t seq;              /* JetStream stream sequence */
    int64_t wm;                /* the engine's watermark then (ms) */
} vigil_redis_offset;

struct vigil_alert_record;
/* One MULTI/EXEC: the records (as save()), the offsets, and one XADD per
 * alert to <prefix>:outbox (field layout in outbox.h). All or nothing; one
 * round trip; errors as save(). VIGIL_FAULT=commit:N kills the process once
 * the N-th such transaction is on the wire. */
vigil_status vigil_redis_store_commit(vigil_store *st, const vigil_store_record *recs, int n,
                                      const vigil_redis_offset *offs, int noffs,
                                      const struct vigil_alert_record *alerts, int nalerts, vigil_error *err);

/* One round trip: check (and on first use record) the partition count under
 * <prefix>:partitions — VIGIL_EINVAL with an explanation when it differs —
 * and read every (group, partition) offset into seqs/wms[g * partitions + p]
 * (0 and INT64_MIN when absent). */
vigil_status vigil_redis_store_load_offsets(vigil_store *st, const char *const *groups, int ngroups,
                                            int partitions, uint64_t *seqs, int64_t *wms, vigil_error *err);

#endif
