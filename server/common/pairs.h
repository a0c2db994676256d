/* pairs.h — the names of a (key group, partition) pair in cluster mode
 * (issue 14): its group token, its keyed subject, its durable consumer, its
 * lease key and its Redis keys. Every wing that touches a pair (ingest,
 * route, state, alerts, cluster) builds the names here, so they agree by
 * construction. It lives in server/common/ and includes nothing of the
 * server because the state wing needs the Redis names and the cluster wing
 * (which uses the state wing) needs the others: a header in server/cluster/
 * would close a circle.
 *
 * A pair is (g, p): a key group's name and p = vigil_hash(key) % P.
 *
 * The group token: NATS subjects, consumer names and KV keys accept only
 * some bytes, and key group names are field names that may hold any. The
 * token is the group name itself when it matches [A-Za-z0-9_-]+, otherwise
 * "x" followed by the lowercase hex of its bytes ("card.id" -> x636172642e6964).
 * One refinement keeps the mapping one-to-one: a plain name that itself has
 * that shape ("x" then an even number of lowercase hex digits, e.g. "x2e" or
 * "x") is encoded as well ("x2e" -> x783265), so no plain name can be read
 * as the encoding of another. Every ordinary field name is its own token.
 *
 * Every function writes a NUL-terminated name into buf (n bytes) and returns
 * its length, or -1 when it does not fit or the input is bad (NULL, p < 0,
 * a group holding '{' or '}' for a Redis name: the hash tag); on -1, buf is
 * "" when n > 0. VIGIL_PAIR_NAME_MAX is a buffer size that fits the names of
 * groups up to 100 bytes with prefixes up to 100 bytes. Thread-safe (no
 * state). */
#ifndef VIGIL_COMMON_PAIRS_H
#define VIGIL_COMMON_PAIRS_H

#include <stddef.h>

#define VIGIL_PAIR_NAME_MAX 512

/* The group token (above). */
int vigil_cluster_group_token(const char *group, char *buf, size_t n);

/* The pair's keyed subject: "<subject_prefix>.<gtoken>.<p>" (vigil.keyed.card.3). */
int vigil_pair_subject(char *buf, size_t n, const char *subject_prefix, const char *group, int p);

/* The pair's durable pull consumer: "<consumer>-<gtoken>-p<p>" (vigil-card-p3). */
int vigil_pair_consumer(char *buf, size_t n, const char *consumer, const char *group, int p);

/* The pair's key in the leases bucket: "<gtoken>.p<p>" (card.p3). */
int vigil_pair_lease_key(char *buf, size_t n, const char *group, int p);

/* A Redis key of the pair: "<prefix>:{<group>:p<p>}:<suffix>" with the raw
 * group name in the hash tag, as the state store writes its keys
 * (server/state/redis_store.c): suffix "offset", "epoch", "outbox", or
 * "k:<key>". */
int vigil_pair_redis_key(char *buf, size_t n, const char *prefix, const char *group, int p, const char *suffix);

/* The fencing epoch: "<prefix>:{<group>:p<p>}:epoch" (an integer, INCR'd by
 * each new owner; a commit checks it). */
int vigil_pair_epoch_key(char *buf, size_t n, const char *prefix, const char *group, int p);

#endif
