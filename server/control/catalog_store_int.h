/* catalog_store_int.h — what the catalog store's three files share
 * (private to catalog_store.c, catalog_store_redis.c, catalog_store_file.c).
 *
 * catalog_store.c holds the interface, the checks every commit passes, the
 * catalog tree of the file and memory backends and the memory backend's
 * audit ring; catalog_store_redis.c the Redis backend; catalog_store_file.c
 * the bytes on disk (catalog.json and audit.log). */
#ifndef VIGIL_CATALOG_STORE_INT_H
#define VIGIL_CATALOG_STORE_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/types.h>
#include "server/control/catalog_store.h"
#include "server/state/redis.h"

#define VCAT_COMMIT_MAX (64u << 20)    /* all values of one commit together, bytes */
#define VCAT_CATALOG_MAX (256u << 20)  /* catalog.json, bytes */
#define VCAT_PREFIX_MAX 200

enum { VCAT_MEMORY, VCAT_FILE, VCAT_REDIS };

struct vigil_catalog_store {
    int kind;
    size_t audit_max;
    cJSON *cat;                   /* file, memory: {"rules":{name:record},"files":{path:hash}} */
    /* redis */
    vigil_redis *r;
    char k_rules[VCAT_PREFIX_MAX + 16], k_files[VCAT_PREFIX_MAX + 16], k_audit[VCAT_PREFIX_MAX + 16];
    char k_gen[VCAT_PREFIX_MAX + 16];   /* <prefix>:catalog_gen, the generation (cluster mode) */
    /* the generation (every backend): the last one read or committed; the
     * commit in progress bumps it when `bump`, after checking `expect` (NULL: no check) */
    uint64_t gen;
    int bump;
    const uint64_t *expect;
    /* file */
    char *dir, *cat_path, *cat_tmp, *aud_path, *aud_tmp;
    int afd;                      /* audit.log, -1 until first needed */
    off_t asize;                  /* its size; it always ends with '\n' */
    size_t alines;                /* its lines */
    /* memory: the audit ring, oldest at rhead */
    char **ring;
    size_t rcap, rhead, rn;
};

/* One write of a commit, checked. */
typedef struct vcat_norm {
    cJSON *tree;    /* a rule record, for the catalog tree (file, memory); NULL once the tree owns it */
    char *text;     /* a rule record or audit entry as cJSON prints it compactly (one line);
                       NULL for a removal or a file hash (that is w->value as given) */
    size_t len;
} vcat_norm;

/* VIGIL_ENOMEM with the store's message. */
vigil_status vcat_oom(vigil_error *err);
/* Append " (note)" to err->msg, keeping what it said. Accepts NULL. */
void vcat_note(vigil_error *err, const char *note);

/* Redis: set the key names from prefix, create the connection and connect. */
vigil_status vcat_redis_open(vigil_catalog_store *st, const char *url, const char *prefix, vigil_error *err);
/* One MULTI/EXEC (after a WATCH and TYPE check) for all n writes. */
vigil_status vcat_redis_commit(vigil_catalog_store *st, const vigil_catalog_write *w, const vcat_norm *nm, int n,
                               vigil_error *err);
/* GET <prefix>:catalog_gen into st->gen (absent: 0). */
vigil_status vcat_redis_generation(vigil_catalog_store *st, vigil_error *err);
vigil_status vcat_redis_load(vigil_catalog_store *st, void (*rule)(void *, const char *, const char *),
                             void (*file)(void *, const char *, const char *), void *ud, vigil_error *err);
/* offset and limit already within audit_max. */
vigil_status vcat_redis_audit(vigil_catalog_store *st, size_t offset, size_t limit,
                              void (*fn)(void *, const char *), void *ud, vigil_error *err);

/* File: set the paths, drop leftover temporary files, read catalog.json
 * into st->cat (missing: st->cat stays as it is, empty). */
vigil_status vcat_file_open(vigil_catalog_store *st, const char *dir, vigil_error *err);
void vcat_file_close(vigil_catalog_store *st);
/* Make what is on disk hold `next` (NULL: the catalog is unchanged) and the
 * commit's audit entries, or nothing of the commit. The caller swaps next
 * in after VIGIL_OK. */
vigil_status vcat_file_commit(vigil_catalog_store *st, const cJSON *next, const vigil_catalog_write *w,
                              const vcat_norm *nm, int n, vigil_error *err);
/* offset and limit already within audit_max. */
vigil_status vcat_file_audit(vigil_catalog_store *st, size_t offset, size_t limit,
                             void (*fn)(void *, const char *), void *ud, vigil_error *err);

#endif
