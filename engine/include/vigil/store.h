/* store.h — where per-key state lives between batches.
 *
 * The engine caches every key's state in memory. A store is the backing:
 * before a batch the engine asks it for the keys it does not hold (one call,
 * so a networked store makes one pipelined round trip), after the batch it
 * hands it every key that changed (one call, one MULTI/EXEC). A state record
 * is an opaque versioned byte string made by the engine. The memory store is
 * "no store" (NULL): the cache is the state. The Redis store lives in server/state/
 * (hiredis) and implements this interface. */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/status.h"

typedef struct vigil_store_key {
    int group;                 /* key group index */
    const char *group_name;    /* its key field, e.g. "customer_id" */
    const char *key;           /* key value as text */
    size_t keylen;
} vigil_store_key;

typedef struct vigil_store_record {
    vigil_store_key k;
    const unsigned char *data; /* NULL with len 0: delete the key */
    size_t len;
    int64_t ttl_ms;            /* 0: no expiry */
} vigil_store_record;

typedef struct vigil_store vigil_store;
struct vigil_store {
    /* For each of keys[0..n): call found(ud, i, data, len) if the store has a
     * record; data lives only during the call. */
    vigil_status (*load)(vigil_store *st, const vigil_store_key *keys, int n,
                         void (*found)(void *ud, int i, const unsigned char *data, size_t len),
                         void *ud, vigil_error *err);
    /* Write all records atomically (all or nothing). */
    vigil_status (*save)(vigil_store *st, const vigil_store_record *recs, int n, vigil_error *err);
    void (*destroy)(vigil_store *st);
};

#endif
