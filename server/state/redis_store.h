/* redis_store.h — the Redis implementation of the state store (store.h).
 *
 * Per-key state lives in Redis when vigil runs with --redis: the engine keeps
 * a cache, loads the keys it lacks before a batch and writes the dirty ones
 * back after it. This store makes exactly one network round trip per call:
 * load() pipelines one GET per key and reads the replies; save() pipelines
 * MULTI, one SET (or DEL) per record, EXEC — atomic, all or nothing. Never one
 * round trip per event. It talks to Redis through the server's one
 * connection layer (redis.h: URL, timeouts, AUTH/SELECT, reconnecting) on a
 * connection of its own: create one store per worker thread (a store is not
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
#include "redis.h"   /* vigil_redis_opts, vigil_redis_cmd, vigil_redis_url_parse, vigil_redis_ping */

/* Limits: a full Redis key (prefix, group and key) is at most this many
 * bytes, otherwise VIGIL_ETOOBIG. */
#define VIGIL_REDIS_MAX_KEY 4096

/* Counters since create, for metrics and benchmarks (round trips per 1000
 * events). A round trip is one load() or save() that went to the server
 * (calls with n == 0 make none); connection setup (AUTH, SELECT) is not
 * counted. round_trips and reconnects are the store's connection's counters
 * (vigil_redis_counters); the load_offsets() round trip counts too. */
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

/* One MULTI/EXEC: the records (as save()), the offsets, then the `extra`
 * commands as given — the server's XADDs of the batch's alerts to the outbox
 * stream (built by vigil_outbox_redis_xadd_args; the state wing knows no
 * alert). All or nothing; one round trip; errors as save() (an error reply
 * to any command of the transaction gives VIGIL_ESTORE with its text). The
 * commands' arrays are borrowed for the call. VIGIL_FAULT=commit:N kills the process
 * once the N-th transaction with offsets or extra commands is on the wire. */
vigil_status vigil_redis_store_commit(vigil_store *st, const vigil_store_record *recs, int n,
                                      const vigil_redis_offset *offs, int noffs,
                                      const vigil_redis_cmd *extra, int nextra, vigil_error *err);

/* One round trip: check (and on first use record) the partition count under
 * <prefix>:partitions — VIGIL_EINVAL with an explanation when it differs —
 * and read every (group, partition) offset into seqs/wms[g * partitions + p]
 * (0 and INT64_MIN when absent). */
vigil_status vigil_redis_store_load_offsets(vigil_store *st, const char *const *groups, int ngroups,
                                            int partitions, uint64_t *seqs, int64_t *wms, vigil_error *err);

/* ---- cluster mode (issue 14): the fenced commit per pair -------------------
 *
 * With cluster.instance set, each (group, partition) pair has one owner at a
 * time, fenced by an epoch that the ownership wing INCRs when it takes the
 * pair. Every Redis key of a pair carries the pair's hash tag {<g>:p<n>}:
 *     <prefix>:{<g>:p<n>}:k:<key>     key state (as above, partitions > 0)
 *     <prefix>:{<g>:p<n>}:offset      "<seq> <watermark ms>" (as above)
 *     <prefix>:{<g>:p<n>}:epoch       integer, the owner's fencing token
 *     <prefix>:{<g>:p<n>}:outbox      the pair's alert stream (the entry
 *                                     fields of server/alerts/outbox.h)
 * so one pair's commit is a single-slot operation, legal on Redis Cluster.
 *
 * vigil_redis_pair_key: "<prefix>:{<group>:p<partition>}:<suffix>" into buf
 * (n bytes, NUL-terminated); returns its length, or -1 when it does not fit,
 * the group is empty or has '{' or '}', or partition < 0. The one place
 * these names are made (the alerts wing's pair outbox uses it too). */
int vigil_redis_pair_key(const char *prefix, const char *group, int partition, const char *suffix, char *buf,
                         size_t n);

/* One pair's share of a commit. Borrowed for the call.
 *   epoch    the epoch this owner holds (what vigil_redis_store_epoch_get
 *            said when it took the pair); the commit is applied only if
 *            <pair>:epoch still holds exactly this (absent counts as 0).
 *   seq, wm  the pair's offset once this commit is applied: pass the
 *            pair's current offset (the last keyed-stream sequence applied,
 *            the worker's watermark now) even when the batch had none of its
 *            events (its keys changed through a watermark advance). (seq, wm)
 *            is also the commit's identity: when the stored offset is at or
 *            past it, compared as (seq, wm), the commit was applied before
 *            (a retry after an unknown outcome): no outbox entry is
 *            appended twice and the offset never moves back. Stored offset
 *            equal to (seq, wm): the records are written (the same SETs and
 *            DELs again, or keys that changed without an offset move), not
 *            the entries. Stored offset past it: nothing is written. A new
 *            commit always moves (seq, wm) forward: a new message moves seq,
 *            a watermark advance moves wm.
 *   recs     the pair's key states (store.h: SET with PX ttl_ms when
 *            ttl_ms > 0, plain SET when 0, DEL when data is NULL); every
 *            record's group must be group_name and its key must hash to
 *            partition (vigil_hash(key) % partitions), else VIGIL_EINVAL:
 *            every key of the call is under the pair's hash tag.
 *   outbox   the alerts to append to the pair's outbox stream, one per
 *            command, each a field list (argc strings: field, value, …) as
 *            vigil_outbox_fields (server/alerts/outbox.h) builds it; the
 *            state wing knows no alert, it XADDs them with id "*" in order. */
typedef struct vigil_redis_pair_commit {
    const char *group_name;
    int partition;
    uint64_t epoch;
    uint64_t seq;
    int64_t wm;
    const vigil_store_record *recs;
    int nrecs;
    const vigil_redis_cmd *outbox;
    int noutbox;
} vigil_redis_pair_commit;

/* What became of one pair's commit. */
typedef struct vigil_pair_result {
    /* VIGIL_OK          applied now, or before (already = 1): either way it
     *                   is in Redis;
     * VIGIL_ESTALE      the pair's epoch is not the expected one: another
     *                   instance took the pair. Nothing of this pair was
     *                   written. Do not retry: the pair is lost (stop it,
     *                   drop its cached state, release nothing of the batch).
     *                   (The status enum's "made against something replaced
     *                   meanwhile"; here the owner was replaced.)
     * VIGIL_ESTORE      Redis answered this pair's script with another
     *                   error, before its first write (the script rules
     *                   out what it can: "OOM …" refuses the first write,
     *                   the offset; "WRONGTYPE …": the outbox key is no
     *                   stream): nothing of the pair was written; retry
     *                   the batch (after fixing Redis);
     * VIGIL_EUNAVAILABLE the connection failed: outcome unknown, retry the
     *                   whole batch (see vigil_redis_store_commit_pairs). */
    vigil_status status;
    int already;          /* VIGIL_OK: the offset was at or past (seq, wm): applied before, no entry appended */
    uint64_t epoch;       /* VIGIL_ESTALE: the epoch Redis holds (0: none) */
} vigil_pair_result;

/* The fenced commit: for each pair, one EVALSHA of the commit script
 * (redis_pairs.c), all pipelined in ONE round trip (the script is loaded
 * with SCRIPT LOAD in the same pipeline on a new connection; a NOSCRIPT
 * answer — Redis restarted or flushed its scripts — is redone with EVAL
 * in a second round trip: NOSCRIPT means nothing ran). KEYS of a pair's
 * call, all under its hash tag: epoch, offset, outbox stream, then the state
 * keys. The script first checks GET epoch == expected; otherwise it writes
 * nothing and answers an error "STALE <current epoch>". Then it compares
 * the offsets (above), writes the records, XADDs the outbox entries (no
 * MAXLEN: the stream is trimmed as its consumer groups ack, outbox.h) and
 * sets the offset. Each pair is atomic on its own; pairs are independent
 * (one stale pair does not stop the others).
 *
 * A pair appears once per call (the same pair again with the same (seq,
 * wm) would be a retry: answered `already`). res[0..npairs) gets each
 * pair's outcome. Returns VIGIL_OK when every pair
 * is VIGIL_OK; VIGIL_EUNAVAILABLE when the connection failed (then every
 * res[i].status is VIGIL_EUNAVAILABLE: unknown; the caller retries the
 * whole batch — a retried pair is not applied twice, see seq above);
 * VIGIL_EINVAL for bad input (the store has no partitions, a record outside
 * its pair, a group with '{' or '}', an empty outbox field list: nothing is
 * sent, every res[i].status is VIGIL_EINVAL); otherwise the status of the
 * first pair that failed (VIGIL_ESTALE or VIGIL_ESTORE), with err saying
 * which pair and why, while res says it for each. npairs == 0: VIGIL_OK,
 * no round trip. VIGIL_FAULT=commit:N kills the process once the N-th
 * commit (this one or vigil_redis_store_commit) is on the wire. */
vigil_status vigil_redis_store_commit_pairs(vigil_store *st, const vigil_redis_pair_commit *pc, int npairs,
                                            vigil_pair_result *res, vigil_error *err);

/* One pair's offset: *seq and *wm (0 and INT64_MIN when absent). One round
 * trip. VIGIL_EUNAVAILABLE, VIGIL_ESTORE (also: a malformed record),
 * VIGIL_EINVAL. */
vigil_status vigil_redis_store_load_pair_offset(vigil_store *st, const char *group_name, int partition,
                                                uint64_t *seq, int64_t *wm, vigil_error *err);

/* The pair's epoch (0 when absent): for tests and for the owner that just
 * took the pair. vigil_redis_store_epoch_incr: INCR it and give the new
 * value (what taking a pair does). One round trip each. Errors as above. */
vigil_status vigil_redis_store_epoch_get(vigil_store *st, const char *group_name, int partition, uint64_t *epoch,
                                         vigil_error *err);
vigil_status vigil_redis_store_epoch_incr(vigil_store *st, const char *group_name, int partition,
                                          uint64_t *epoch, vigil_error *err);

#endif
