/* redis_store_int.h — the Redis store's private parts, shared by its two
 * files and by nothing else:
 *   redis_store.c   the store (load, save, the MULTI/EXEC commit, offsets);
 *   redis_pairs.c   cluster mode (issue 14): the fenced commit per
 *                   (group, partition) pair — one Lua script per pair — and
 *                   a pair's epoch and offset.
 * Both talk to Redis on the store's one connection (rs->conn). */
#ifndef VIGIL_REDIS_STORE_INT_H
#define VIGIL_REDIS_STORE_INT_H

#include <hiredis/hiredis.h>
#include "redis_store.h"

#define STORE_MAGIC 0x56524453u   /* "VRDS" */

typedef struct redis_store {
    vigil_store base;          /* first: a vigil_store* is a redis_store* */
    uint32_t magic;
    vigil_redis *conn;         /* owned; this store's one connection */
    char *prefix;              /* owned */
    size_t prefixlen;
    vigil_redis_stats stats;   /* round_trips and reconnects come from conn */
    char keybuf[VIGIL_REDIS_MAX_KEY];
    int partitions;            /* 0: tag {group}; else {group:p<hash % partitions>} */
    redisReply **replies;      /* load(): replies held until all are checked */
    size_t replies_cap;
    vigil_redis_batch batch;   /* the commit's commands, formatted (reused) */
    uint64_t script_conn;      /* redis_pairs.c: the connection (counters.connects) the script was loaded on; 0: none */
} redis_store;

/* Queue one command on the store's connection (vigil_redis_append). */
vigil_status vrs_queue(redis_store *rs, int argc, const char **argv, const size_t *lens, vigil_error *err);
/* VIGIL_EINVAL / VIGIL_ETOOBIG for a key the store cannot name. */
vigil_status vrs_check_key(const redis_store *rs, const vigil_store_key *k, vigil_error *err);
/* "<prefix>:{<group>[:p<n>]}:k:<key>" into buf (checked by vrs_check_key: it fits
 * VIGIL_REDIS_MAX_KEY); returns its length. */
size_t vrs_build_key(const redis_store *rs, const char *group, const char *key, size_t keylen, char *buf);

#endif
