/* cluster.h — the cluster wing (issue 14, DESIGN.md §7): which instance owns
 * which (key group, partition) pair, and for how long.
 *
 * Members: every instance puts its entry in the KV bucket
 * `<kv_prefix>_members` (key: its group-token-encoded name, value
 * {"instance","http","started_ms","renewed_ms","versions":{rule:version}})
 * once a heartbeat. A member is live while its entry is younger than
 * min(2 × heartbeat + 1 s, lease), its age being now − the time the entry
 * was written (the value's renewed_ms, or the KV entry's Created time when
 * that is older).
 *
 * Ownership: rendezvous hashing over the live members (rendezvous.h) gives
 * each pair a preferred member. A member takes a pair it prefers whose lease
 * in `<kv_prefix>_leases` (key `<gtoken>.p<n>`, value
 * {"instance","epoch","renewed_ms"}) is absent, expired (older than the
 * lease) or its own from before (a restart, a fenced pair): KV Create, or
 * Update with the revision it read; then INCR of the pair's fencing epoch in
 * Redis (`<prefix>:{<group>:p<n>}:epoch`, server/common/pairs.h); then
 * `acquired(g, p, epoch)`. If Redis cannot be reached then, the lease is
 * given back (deleted) and nothing is acquired. Each heartbeat it renews
 * its leases (Update with the last revision): a refused update is a loss at
 * once; a renewal that cannot reach NATS is retried each heartbeat, and the
 * pair is lost once the last good renewal is older than lease − heartbeat −
 * the I/O timeout (so before anyone else may judge it expired, even if the
 * next heartbeat comes late). Renewals come first in a heartbeat; when NATS
 * does not answer one, the rest of that heartbeat is skipped. A pair it holds but no longer
 * prefers (a member joined) is released: `lost` first, then the lease is
 * deleted, so the preferred member takes it at its next heartbeat. A stop
 * releases every pair the same way and deletes the member entry: a clean
 * stop hands over within a heartbeat, a crash within the lease.
 *
 * Fencing: the epoch a commit carries is checked against Redis in the
 * commit itself (helper C's script); a lease only makes a double owner
 * rare, the epoch makes its commits fail. A refusal is reported with
 * vigil_cluster_fenced.
 *
 * Clocks: lease ages are judged by the time the renewer wrote (and the KV
 * entry's Created time, which is the NATS server's): the members' clocks
 * and the NATS server's must agree within a small fraction of the lease
 * (NTP does; the tests run on one host). A clock off by more than that
 * shortens or lengthens leases; the epochs still keep commits single-owner.
 *
 * Instance names must be unique in a cluster: two live processes with one
 * name would take the pair from each other at every heartbeat (the epochs
 * keep their commits apart, but nothing else would work).
 *
 * Threads: one thread per vigil_cluster ticks every heartbeat; `acquired`
 * and `lost` are called on it, never with a lock of this wing held (they
 * may call vigil_cluster_epoch, not vigil_cluster_stop or _destroy). The
 * first heartbeat runs as soon as the thread starts, so `acquired` may come
 * before vigil_cluster_start returns; *out is set before the thread starts.
 * Every other function is thread-safe.
 * Network calls (NATS KV, Redis INCR) are made only on that thread, each
 * bounded by the I/O timeout: min(heartbeat, lease / 4), within 100 ms..5 s. */
#ifndef VIGIL_CLUSTER_H
#define VIGIL_CLUSTER_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include "server/http/http.h"
#include "server/state/redis.h"
#include "vigil/status.h"

#define VIGIL_CLUSTER_MAX_GROUPS 64      /* key groups (hot reloads only add) */
#define VIGIL_CLUSTER_MAX_PARTITIONS 4096
#define VIGIL_CLUSTER_MAX_MEMBERS 256    /* live members considered; more are ignored, with a warning */

typedef struct vigil_cluster vigil_cluster;

typedef struct vigil_cluster_config {
    natsConnection *nc;              /* borrowed: the server's NATS connection (JetStream enabled); outlives the cluster */
    const char *redis_url;           /* its own Redis connection, for INCR of the epochs (required) */
    const vigil_redis_opts *redis_opts; /* NULL: defaults */
    const char *redis_prefix;        /* the keys' prefix, as the state store's ("vigil" when NULL/"") */
    const char *instance;            /* this member's name (required, 1..100 bytes, no control characters) */
    const char *http_url;            /* advertised in the members bucket, may be NULL */
    int64_t lease_ms, heartbeat_ms;  /* both > 0, heartbeat at most lease / 2 */
    const char *kv_prefix;           /* the buckets' prefix, [A-Za-z0-9_-]+ ("VIGIL" when NULL/"") */
    const char *const *groups;       /* the key groups, index g; copied */
    int ngroups;                     /* 0..VIGIL_CLUSTER_MAX_GROUPS */
    int partitions;                  /* P, 1..VIGIL_CLUSTER_MAX_PARTITIONS */
    /* On the cluster thread. acquired: the pair is ours with this epoch
     * (commits must carry it). lost: it is not ours any more; stop the pair
     * (fetch, worker state) before returning. Either may be NULL. */
    void (*acquired)(void *ud, int g, int p, uint64_t epoch);
    void (*lost)(void *ud, int g, int p);
    void *ud;
} vigil_cluster_config;

/* Check cfg, bind or create the two buckets (history 1, TTL 3 × lease, file
 * storage), prepare the Redis handle (it connects when first needed) and
 * start the thread, whose first tick runs at once. *out is owned by the
 * caller: vigil_cluster_stop, then vigil_cluster_destroy. Errors:
 * VIGIL_EINVAL (a bad setting, named), VIGIL_EUNAVAILABLE (JetStream not
 * enabled or not answering; the bucket is named), VIGIL_EPARSE (a bad Redis
 * URL), VIGIL_ENOMEM. On an error nothing is left running. */
vigil_status vigil_cluster_start(const vigil_cluster_config *cfg, vigil_cluster **out, vigil_error *err);

/* Release every pair (lost, then delete its lease), delete the member entry,
 * join the thread. When NATS does not answer, the leases and the entry are
 * left to expire (lost is still called for every pair), so a stop takes at
 * most about one I/O timeout. Idempotent; accepts NULL. */
void vigil_cluster_stop(vigil_cluster *c);
/* Stop (if not yet) and free. Accepts NULL. The NATS connection is not closed. */
void vigil_cluster_destroy(vigil_cluster *c);

/* The pair's epoch while it is ours, 0 when not (or g, p out of range). */
uint64_t vigil_cluster_epoch(vigil_cluster *c, int g, int p);
/* A commit of the pair was refused for a stale epoch (any thread): the
 * cluster thread calls lost at once (not waiting for the heartbeat), keeps
 * its hands off the lease (it may be another member's now) and takes the
 * pair again at a later heartbeat if the lease turns out to be still its
 * own, with a new epoch. */
void vigil_cluster_fenced(vigil_cluster *c, int g, int p);
/* The epoch while the pair is held AND its lease was renewed less than
 * lease - heartbeat ago (our clock), else 0: a process that was paused
 * (SIGSTOP, a long GC-like stall) past its lease sees 0 before its thread
 * notices the loss. Fetchers ask it before each fetch, so a paused owner
 * never takes messages from the pair's next owner. Thread-safe. */
uint64_t vigil_cluster_fresh_epoch(vigil_cluster *c, int g, int p);
/* The key groups after a hot reload: groups must start with the current
 * ones in order (key groups only grow); the new ones are added and become
 * pairs at the next heartbeat. A list that drops or reorders groups is
 * refused with a warning in the log (nothing changes). */
void vigil_cluster_set_groups(vigil_cluster *c, const char *const *groups, int ngroups);
/* The rule versions this instance runs, a JSON object {"rule":version,…}
 * (copied), put in the member entry from the next heartbeat on. Not an
 * object: a warning, nothing changes. NULL: {}. */
void vigil_cluster_set_versions(vigil_cluster *c, const char *versions_json);
/* Lag per pair for GET /v1/cluster ("lag" of the pairs this instance owns):
 * called on an HTTP thread with no lock of this wing held. NULL: none. */
void vigil_cluster_set_lag_fn(vigil_cluster *c, uint64_t (*lag)(void *ud, int g, int p), void *ud);

/* GET /v1/cluster's body, as of the last heartbeat (owned by the caller):
 *   {"instance","lease_ms","heartbeat_ms","partitions","groups":[…],
 *    "members":[{"instance","http","age_ms","live","self","versions":{…},"pairs":n}],
 *    "pairs":[{"group","p","owner","epoch","lease_age_ms","lag"}]}
 * members: every entry in the bucket (live or not); pairs: every pair, owner
 * null when no lease is held or it expired; "lag" only on this instance's
 * pairs, with a lag function. NULL when out of memory. */
cJSON *vigil_cluster_json(vigil_cluster *c);
/* Register GET /v1/cluster (role viewer: it holds no secret) on h, answered
 * with vigil_cluster_json. c must outlive h's handlers. */
void vigil_cluster_http(vigil_cluster *c, vigil_http *h);

typedef struct {
    unsigned long long acquired, lost, fenced, renewals, renew_failures, members;   /* members: live now */
} vigil_cluster_stats;
void vigil_cluster_get_stats(vigil_cluster *c, vigil_cluster_stats *out);

/* Tests only: a crash. The thread stops without releasing anything or
 * calling lost (leases and the member entry stay until they expire); the
 * caller then closes its NATS connection. Only vigil_cluster_destroy may
 * follow. */
void vigil_cluster_crash_for_test(vigil_cluster *c);

#endif
