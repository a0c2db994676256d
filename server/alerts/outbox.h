/* outbox.h — the alert outbox: alerts wait here until every endpoint has them.
 *
 * DESIGN.md §2/§8 and issue 4: an alert is appended to the outbox in the
 * same commit as the key state that produced it, and removed only once
 * delivery succeeded (or it went to the dead-letter list). Dispatchers
 * (dispatch.c) read it per endpoint; each endpoint has its own progress, so a
 * slow or dead endpoint never holds back another.
 *
 * Three backends, one reading interface (struct vigil_outbox) — and in
 * cluster mode a fourth, the pair outbox (at the end of this file):
 *   - Redis (with the Redis store): the stream <prefix>:outbox. Workers
 *     append with XADD inside their commit's MULTI/EXEC (redis_store.c), with
 *     exactly these fields, in this order:
 *         id <alert id> rule <rule> severity <sev> key <key> mode <active|shadow> json <alert JSON>
 *     Each endpoint is a consumer group named after it (created at 0 if
 *     absent, so nothing appended before is missed); acked entries are
 *     trimmed once every group has acked them. Dead letters: the stream
 *     <prefix>:deadletter.
 *   - File (with the memory store): <data_dir>/outbox.log, an append-only
 *     log of appended alerts and per-endpoint acks, replayed on open and
 *     compacted when mostly acked. Appending an alert whose id the log still
 *     holds does nothing (a replay after a crash regenerates the same ids).
 *     Dead letters: <data_dir>/deadletter.jsonl.
 *   - Memory (nothing durable: no Redis, data_dir ""): a bounded ring in
 *     the process (outbox_mem.c); a full ring refuses appends (VIGIL_EFULL,
 *     counted, logged at most once a second). Lost at exit. Dead letters:
 *     the newest VIGIL_OUTBOX_MEM_DEAD_MAX, in memory.
 *
 * Positions ("ref") are opaque strings: a Redis stream id, or a decimal
 * sequence for the file and memory backends; they increase in append order.
 *
 * Threads: one outbox object may be used by several threads at once (the
 * backends lock or use one connection per call as needed), but each
 * endpoint has ONE reader: Redis reads as the single consumer "vigil" of
 * the endpoint's group (outbox_redis.c has the details).
 *
 * Errors (every call): VIGIL_EINVAL (bad argument or position),
 * VIGIL_ENOTFOUND (file: an endpoint not given at open), VIGIL_ENOMEM,
 * VIGIL_EIO (file), VIGIL_EUNAVAILABLE (Redis unreachable or the connection
 * dropped: retry later), VIGIL_ESTORE (Redis answered an error). err may be
 * NULL. */
#ifndef VIGIL_OUTBOX_H
#define VIGIL_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/status.h"
#include "record.h"

/* What a writer appends and a dispatcher reads is the server's one alert
 * record (record.h). On append the outbox reads id, rule, severity, key,
 * mode, json and len (ref, appended_ms and ts are ignored); read() fills
 * every field but ts (0) and gives the record its own malloc'd json (free
 * it with vigil_alert_record_free). A rule, severity or key longer than its
 * field was cut to fit (they serve filtering and per-key ordering only;
 * json is always whole). appended_ms is the wall clock (ms since the Unix
 * epoch) when the alert was appended (Redis: the time part of its stream
 * id, the server's clock; file and memory: the appender's clock); the
 * dispatcher puts it in the envelope's "timestamp", so every attempt,
 * before and after a restart, sends the same body. 0 when unknown. */

typedef struct vigil_outbox vigil_outbox;
struct vigil_outbox {
    /* Up to max entries that endpoint `ep` has not acked, oldest first,
     * strictly after position `after` ("" = from the oldest unacked one:
     * after a restart that re-reads what was read but never acked). Waits
     * up to wait_ms for one to arrive when there is none. *n = count. */
    vigil_status (*read)(vigil_outbox *ob, const char *ep, const char *after, vigil_alert_record *out,
                         int max, int *n, int wait_ms, vigil_error *err);
    /* Endpoint ep is done with these entries (delivered, filtered out, or
     * dead-lettered). Idempotent. */
    vigil_status (*ack)(vigil_outbox *ob, const char *ep, const char *const *refs, int n, vigil_error *err);
    /* Append e to the dead-letter list with why it failed, then ack it for ep. */
    vigil_status (*dead)(vigil_outbox *ob, const char *ep, const vigil_alert_record *e, const char *reason,
                         int attempts, vigil_error *err);
    /* The newest `limit` dead letters (of ep, or all when ep is NULL) as a
     * JSON array text, malloc'd: [{"endpoint","alert_id","rule","key",
     * "reason","attempts","dead_at","alert":{…}}…], newest first; limit <= 0
     * means 100, at most 10000. ("dead_at": RFC 3339 ms UTC; "alert" is the
     * alert JSON, or a string if it was not JSON.) */
    vigil_status (*list_dead)(vigil_outbox *ob, const char *ep, int limit, char **json, vigil_error *err);
    /* Entries appended and not yet acked by ep (its backlog). */
    vigil_status (*depth)(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err);
    void (*destroy)(vigil_outbox *ob);
    /* Optional (NULL: always 1). 0 once the entry at ref is no longer this
     * outbox's to deliver (the pair outbox: its pair was removed, another
     * instance owns it now); the dispatcher then drops it unacked instead
     * of starting a request. Thread-safe, no network. */
    int (*holds)(vigil_outbox *ob, const char *ref);
};

/* Redis backend on url with key prefix (NULL: "vigil"); endpoint names are
 * the consumer groups, created if absent. Own connection(s). */
vigil_status vigil_outbox_redis_open(const char *url, const char *prefix, const char *const *endpoints,
                                     int nendpoints, vigil_outbox **out, vigil_error *err);

/* File backend in dir (created if absent). fsync: fsync after each append. */
vigil_status vigil_outbox_file_open(const char *dir, const char *const *endpoints, int nendpoints, int fsync,
                                    vigil_outbox **out, vigil_error *err);
/* File backend, the writer side (workers, thread-safe): append alerts in
 * order, all or nothing; ids the log already holds are skipped. */
vigil_status vigil_outbox_file_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n,
                                      vigil_error *err);
/* Every alert appended before the previous call of this is covered by a
 * state snapshot, so a restart can no longer regenerate it: the log may
 * forget those ids once they are acked (compaction keeps later ids, acked
 * or not, for deduplication). */
void vigil_outbox_file_mark_snapshot(vigil_outbox *ob);

/* Memory backend (outbox_mem.c): at most cap alerts (0: 100000) and
 * VIGIL_OUTBOX_MEM_MAX_BYTES of alert JSON held until every endpoint acked
 * them. Endpoint names as for the other backends (at most 64). With no
 * endpoint, appends are counted and dropped. *out owned by the caller
 * (ob->destroy). Errors: VIGIL_EINVAL, VIGIL_ENOMEM. */
#define VIGIL_OUTBOX_MEM_MAX_BYTES ((size_t)256 << 20)
#define VIGIL_OUTBOX_MEM_DEAD_MAX 1000   /* dead letters kept; the oldest goes first */
vigil_status vigil_outbox_mem_open(const char *const *endpoints, int nendpoints, size_t cap, vigil_outbox **out,
                                   vigil_error *err);
/* Memory backend, the writer side (thread-safe, never blocks): validate
 * every alert (VIGIL_EINVAL: an id that is not 1..255 printable characters
 * without spaces, or no JSON; VIGIL_ETOOBIG: JSON over 4 MiB; nothing is
 * appended then), then append them in order. Policy when full: an alert
 * that does not fit (cap alerts or VIGIL_OUTBOX_MEM_MAX_BYTES held) is
 * refused and dropped, counted in `refused` and logged on stderr at most
 * once a second; the others are appended and the call returns VIGIL_EFULL.
 * VIGIL_ENOMEM: the alerts before the one that failed were appended. No
 * deduplication (nothing is replayed without durability). */
vigil_status vigil_outbox_mem_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n, vigil_error *err);
/* 1 when ob is a memory outbox. */
int vigil_outbox_is_mem(const vigil_outbox *ob);

typedef struct vigil_outbox_mem_counters {
    unsigned long long appended;       /* alerts accepted since open */
    unsigned long long refused;        /* alerts refused because the outbox was full */
    size_t held, bytes, cap;           /* alerts (and their JSON bytes) held now; the capacity */
    size_t dead;                       /* dead letters kept now */
    unsigned long long dead_dropped;   /* dead letters dropped to keep the newest */
} vigil_outbox_mem_counters;
/* Counters of a memory outbox into *st. VIGIL_EINVAL when ob is not one. */
vigil_status vigil_outbox_mem_stats(vigil_outbox *ob, vigil_outbox_mem_counters *st);

/* ---- added (outbox_file.c, outbox_redis.c) --------------------------------
 *
 * File backend, on-disk shape (outbox_file_log.c): "VIGILOB1" then records
 *   [u32 len][u32 crc32(type, payload)][u8 type][payload: len bytes]   (LE)
 * type 'A' alert (seq, appended_ms, shadow, id, rule, severity, key, json),
 * 'K' acks of one endpoint (name, seqs), 'D' an acked id kept only for
 * deduplication (seq, id), 'M' meta (last seq, forget-up-to seq from
 * mark_snapshot). Open replays the records; the first short or
 * checksum-failing record and everything after it are a torn tail: ignored,
 * truncated away, reported on stderr. Compaction writes outbox.log.tmp,
 * fsyncs it and renames it over outbox.log. */

/* File backend: compact now (normally automatic after an ack once the log is
 * at least 1 MiB and less than half of it is still needed). Drops alerts
 * every configured endpoint acked, keeping their ids ('D') unless
 * mark_snapshot let them go. VIGIL_EIO (err says why; the old log stays in
 * use), VIGIL_EINVAL when ob is not a file outbox. For tests and tools. */
vigil_status vigil_outbox_file_compact(vigil_outbox *ob, vigil_error *err);

/* Redis backend: XTRIM <prefix>:outbox MINID <oldest entry some configured
 * endpoint still needs> now (normally run from ack() at most once a
 * second). Only the endpoints given at open count: a group left behind by a
 * removed endpoint does not hold the stream; with no endpoints nothing is
 * trimmed. VIGIL_EUNAVAILABLE / VIGIL_ESTORE as for the other calls,
 * VIGIL_EINVAL when ob is not a Redis outbox. For tests and tools. */
vigil_status vigil_outbox_redis_trim(vigil_outbox *ob, vigil_error *err);

/* The stream entry of one alert: its field list, exactly the layout above
 *   id <id> rule <rule> severity <sev> key <key> mode <active|shadow> json <json>
 * into argv/lens (VIGIL_OUTBOX_FIELDS_ARGC slots; they borrow a's strings and
 * live as long as a). Returns the count. The one place that layout is made:
 * vigil_outbox_redis_xadd_args (the single stream) and the cluster mode's
 * pair commit (vigil_redis_store_commit_pairs, whose script XADDs it to the
 * pair's stream) both take it from here. */
#define VIGIL_OUTBOX_FIELDS_ARGC 12
int vigil_outbox_fields(const vigil_alert_record *a, const char **argv, size_t *lens);

/* The XADD of one alert in the field layout above, as an argv for
 * redisAppendCommandArgv / redisCommandArgv:
 *   XADD <stream> * id <id> rule <rule> severity <sev> key <key> mode <active|shadow> json <json>
 * stream is "<prefix>:outbox". argv/lens need VIGIL_OUTBOX_XADD_ARGC slots;
 * they borrow a's strings (and stream) and live as long as those. Returns
 * the argc (VIGIL_OUTBOX_XADD_ARGC). The id must stay "*": the entry's time
 * part is the append time (appended_ms). */
#define VIGIL_OUTBOX_XADD_ARGC 15
int vigil_outbox_redis_xadd_args(const char *stream, const vigil_alert_record *a, const char **argv,
                                 size_t *lens);

/* Redis backend, a writer side for tests and tools (the server's workers
 * XADD inside their own MULTI/EXEC): append alerts in order in one
 * MULTI/EXEC. No deduplication (Redis: the workers' offsets make replays
 * effectively-once). VIGIL_EINVAL, VIGIL_EUNAVAILABLE, VIGIL_ESTORE. */
vigil_status vigil_outbox_redis_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n,
                                       vigil_error *err);

/* ---- cluster mode (issue 14): the outboxes of the pairs this instance owns
 * (outbox_pairs.c) ---------------------------------------------------------
 *
 * With cluster.instance set, a worker's commit XADDs each alert to the
 * stream of its (group, partition) pair, <prefix>:{<g>:p<n>}:outbox (same
 * entry fields as <prefix>:outbox; vigil_redis_store_commit_pairs), and the
 * pair's owner delivers them. This backend is the set of the streams of the
 * pairs added to it; the one dispatcher (dispatch.c) reads it like any
 * outbox. Per endpoint and pair: a consumer group named after the endpoint
 * (created at 0 with MKSTREAM, before the endpoint's first read of the
 * pair), consumer "vigil" — fixed, so a new owner inherits a dead owner's
 * pending entries: on add() every endpoint reads the pair's pending entries
 * first (from ID 0), then new ones, and a redelivered alert keeps its
 * webhook-id (the alert id). Positions ("ref") are "<slot>/<stream id>",
 * slot a number unique to one add() of a pair; each read returns entries in
 * stream order per pair, and all the alerts of one key are in one pair, so
 * the dispatcher's per-key order holds. A read that blocks waits at most
 * VIGIL_OUTBOX_PAIRS_BLOCK_MS on Redis (then returns nothing), so remove()
 * never waits long.
 *
 * Dead letters go to the one <prefix>:deadletter of the deployment (MULTI:
 * XADD it, XACK the pair's stream), not one per pair: GET /v1/deadletters
 * on any instance must list them all, a dead letter is rare and never
 * moves with a pair, and a single Redis server (what server/state/redis.h
 * speaks) allows a MULTI over two hash tags. list_dead reads it as the Redis
 * backend does. depth(ep) sums the owned pairs' backlogs (one or two round
 * trips per pair). Trimming as the Redis backend, per pair stream, for the
 * streams an ack touched, at most once a second.
 *
 * Threads: as every outbox (one reader per endpoint); add and remove may be
 * called from any thread. Errors as above; VIGIL_ENOTFOUND for an endpoint
 * not given at open. */
#define VIGIL_OUTBOX_PAIRS_BLOCK_MS 100
struct vigil_redis_opts;   /* server/state/redis.h */

/* Open on url (redis://…) with key prefix (NULL: "vigil"), Redis timeouts
 * opts (NULL: defaults) and the endpoints (names as for the Redis backend,
 * at most 64). No pair yet: reads return nothing (waiting up to wait_ms
 * for an add). Does not connect (the first read does). *out owned by the
 * caller (ob->destroy). VIGIL_EINVAL, VIGIL_EPARSE (URL), VIGIL_ENOMEM. */
vigil_status vigil_outbox_pairs_open(const char *url, const char *prefix, const struct vigil_redis_opts *opts,
                                     const char *const *endpoints, int nendpoints, vigil_outbox **out,
                                     vigil_error *err);
/* This instance owns pair (group, partition) now: read its stream from the
 * next read on (its pending entries, then new ones). Never touches the
 * network (the reader creates the groups), so it may be called from an
 * ownership callback. Adding a pair already added does nothing.
 * VIGIL_EINVAL (not a pair outbox, a group with '{' or '}', partition < 0),
 * VIGIL_ENOMEM. */
vigil_status vigil_outbox_pairs_add(vigil_outbox *ob, const char *group, int partition, vigil_error *err);
/* This instance lost the pair: no read after this call returns an entry of
 * it (a read in progress that includes it is waited for: at most
 * VIGIL_OUTBOX_PAIRS_BLOCK_MS plus the Redis timeout; entries such a read
 * claimed stay pending for the next owner). Alerts of it that the
 * dispatcher already read are not started any more (holds() says no: they
 * are dropped unacked); one in flight may finish (at-least-once: the next
 * owner sends it again with the same webhook-id); acks of it still reach
 * the stream (harmless), dead letters of it are left to the next owner.
 * Removing a pair not added does nothing. Not from a thread inside this
 * outbox's read (a dispatcher thread). VIGIL_EINVAL. */
vigil_status vigil_outbox_pairs_remove(vigil_outbox *ob, const char *group, int partition, vigil_error *err);
/* 1 when ob is a pair outbox. */
int vigil_outbox_is_pairs(const vigil_outbox *ob);

#endif
