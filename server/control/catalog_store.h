/* catalog_store.h — where the served rule catalog and the audit log are
 * kept, so that a restart serves the same rule versions, modes and sources
 * (DESIGN.md §6 "Versions"), and every change can be read at GET /v1/audit.
 *
 * The control wing (control.c, catalog.c) decides what a record means; this
 * file only keeps opaque JSON texts, in one of three backends:
 *   redis   the store's Redis (hashes <prefix>:rules and <prefix>:rulefiles,
 *           a capped list <prefix>:audit); one MULTI/EXEC per commit;
 *   file    <data_dir>/catalog.json (rules and file hashes, rewritten whole:
 *           temporary file, fsync, rename, fsync of the directory) and
 *           <data_dir>/audit.log (JSON Lines, appended, fsync'd);
 *   memory  nothing durable (no Redis, no data dir): kept for the process.
 * Every backend keeps the audit log to the last VIGIL_AUDIT_MAX entries.
 *
 * Texts: a rule record and an audit entry must each be one JSON object; the
 * store keeps it as cJSON prints it compactly, so every backend gives back
 * the same value with the same text (whitespace, escapes and number
 * spelling may differ from what was committed; numbers are IEEE doubles,
 * so an integer beyond 2^53 belongs in a string). A file hash is any text.
 * Limits: a value at most VIGIL_CATALOG_VALUE_MAX bytes, a rule name, path
 * or hash at most VIGIL_CATALOG_KEY_MAX bytes (VIGIL_ETOOBIG beyond).
 *
 * Not thread-safe: the control wing calls it under its own mutex. */
#ifndef VIGIL_CATALOG_STORE_H
#define VIGIL_CATALOG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/status.h"

#define VIGIL_AUDIT_MAX 100000
#define VIGIL_CATALOG_VALUE_MAX (16u << 20)   /* bytes of one record or audit entry */
#define VIGIL_CATALOG_KEY_MAX 4096            /* bytes of a rule name, a path, a hash */

typedef struct vigil_catalog_store vigil_catalog_store;

typedef struct vigil_catalog_store_config {
    const char *redis_url;     /* set (non-empty): the redis backend */
    const char *redis_prefix;  /* default "vigil" */
    const char *data_dir;      /* else, when non-empty: the file backend; else memory */
} vigil_catalog_store_config;

/* Open (and for redis, connect: VIGIL_EUNAVAILABLE when it cannot). The
 * file backend creates data_dir's files on the first commit; it reads an
 * existing catalog.json here: VIGIL_EPARSE when it is not a catalog (err
 * names the file, and the line, column and byte of a JSON error), VIGIL_EIO
 * when it cannot be read. */
vigil_status vigil_catalog_store_open(const vigil_catalog_store_config *cfg, vigil_catalog_store **out,
                                      vigil_error *err);
void vigil_catalog_store_close(vigil_catalog_store *st);   /* accepts NULL */
const char *vigil_catalog_store_kind(const vigil_catalog_store *st);   /* "redis", "file", "memory" */

/* Every stored rule record and file hash, in no particular order: rule(ud,
 * name, json) once per rule, file(ud, path, hash) once per file. The texts
 * live only during the call. */
vigil_status vigil_catalog_store_load(vigil_catalog_store *st,
                                      void (*rule)(void *ud, const char *name, const char *json),
                                      void (*file)(void *ud, const char *path, const char *hash),
                                      void *ud, vigil_error *err);

/* One write of a commit. */
typedef enum vigil_catalog_write_kind {
    VIGIL_CW_RULE,      /* key = rule name, value = its record (JSON), NULL: remove it */
    VIGIL_CW_FILE,      /* key = rules-directory path, value = content hash, NULL: remove */
    VIGIL_CW_AUDIT      /* value = one audit entry (a JSON object text); key unused */
} vigil_catalog_write_kind;

typedef struct vigil_catalog_write {
    vigil_catalog_write_kind kind;
    const char *key;
    const char *value;
} vigil_catalog_write;

/* Apply every write, all or nothing (redis: one MULTI/EXEC; file: the
 * catalog rewrite, then the audit lines; a crash between the two can lose
 * the audit lines, never half a catalog). On error nothing is applied in
 * memory either, and err says what failed. */
vigil_status vigil_catalog_store_commit(vigil_catalog_store *st, const vigil_catalog_write *w, int n,
                                        vigil_error *err);

/* The catalog's generation (cluster mode, issue 14): a counter that
 * vigil_catalog_store_commit_gen increments in the same transaction as its
 * writes, so that servers sharing one Redis see whether the catalog changed
 * since they read it (redis: the integer key <prefix>:catalog_gen; file and
 * memory: this handle's count, kept for the process). 0 before the first
 * such commit. Errors: the store's (VIGIL_EUNAVAILABLE, VIGIL_ESTORE when
 * the key holds no integer). */
vigil_status vigil_catalog_store_generation(vigil_catalog_store *st, uint64_t *out, vigil_error *err);

/* vigil_catalog_store_commit that also increments the generation. expect:
 * NULL, or the generation the caller's catalog was read at; when the
 * store's generation is another, nothing is written and the answer is
 * VIGIL_ECONFLICT (err names both: another server changed the catalog).
 * *gen_out (may be NULL) gets the new generation. */
vigil_status vigil_catalog_store_commit_gen(vigil_catalog_store *st, const vigil_catalog_write *w, int n,
                                            const uint64_t *expect, uint64_t *gen_out, vigil_error *err);

/* The audit entries, oldest first, after skipping `offset` of the newest-first
 * order and taking at most `limit`: fn(ud, json) per entry. So offset 0,
 * limit 100 gives the latest 100 (in time order). */
vigil_status vigil_catalog_store_audit(vigil_catalog_store *st, size_t offset, size_t limit,
                                       void (*fn)(void *ud, const char *json), void *ud, vigil_error *err);

/* Tests only: keep at most `max` audit entries in this handle (0: back to
 * VIGIL_AUDIT_MAX), so a test can watch trimming without 100 000 commits.
 * The server never calls it. */
void vigil_catalog_store_set_audit_max(vigil_catalog_store *st, size_t max);

#endif
