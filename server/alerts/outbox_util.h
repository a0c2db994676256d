/* outbox_util.h — what the three outbox backends (outbox_file.c,
 * outbox_mem.c, outbox_redis*.c) do alike, written once; private to
 * server/alerts (nothing outside the wing includes it).
 *
 * Why it exists: the backends differ in where alerts live (a log file, a
 * ring in memory, a Redis stream) but not in how a call to the vigil_outbox
 * interface (outbox.h) is checked and answered: the argument checks and
 * error texts, the decimal positions of the file and memory backends, the
 * CLOCK_MONOTONIC deadline of a waiting read, the dead-letter JSON object
 * and the list_dead limits. Three copies had started to drift (one accepted
 * a NULL position, the other did not); one copy cannot.
 *
 * Errors: every function that can fail returns a vigil_status and, for
 * anything but VIGIL_OK, sets err (may be NULL) with the message the
 * interface's callers show. Nothing here locks: callers hold their own
 * mutex where they need one. */
#ifndef VIGIL_OUTBOX_UTIL_H
#define VIGIL_OUTBOX_UTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "outbox.h"

#define VOUTBOX_DEAD_LIMIT_DEFAULT 100   /* list_dead limit <= 0 */
#define VOUTBOX_DEAD_LIMIT_MAX 10000     /* list_dead limit at most */

/* VIGIL_ENOMEM with "outbox: out of memory". */
vigil_status voutbox_oom(vigil_error *err);

/* VIGIL_ENOTFOUND with "outbox: unknown endpoint 'ep'" (ep may be NULL). */
vigil_status voutbox_unknown_ep(vigil_error *err, const char *ep);

/* Index of ep among names[0..n-1]; -1 when ep is NULL or not there. */
int voutbox_ep_index(char *const *names, int n, const char *ep);

/* Lock mu and find ep among names: its index, with mu held; or -1, with
 * mu released and err set as voutbox_unknown_ep (VIGIL_ENOTFOUND). */
int voutbox_lock_ep(pthread_mutex_t *mu, char *const *names, int n, const char *ep, vigil_error *err);

/* depth() (outbox.h) of a backend that keeps a count per endpoint:
 * *n = counts[index of ep], read under mu. */
vigil_status voutbox_depth(pthread_mutex_t *mu, char *const *names, int n_names, const uint64_t *counts,
                           const char *ep, uint64_t *n, vigil_error *err);

/* A position of the file and memory backends: strict decimal, no sign, no
 * space, no overflow. "" and NULL are 0 (before the first alert). Returns
 * 0, or -1 when malformed (*out then undefined). */
int voutbox_parse_seq(const char *s, uint64_t *out);

/* An alert id goes into a header and the signed string: 1..max characters,
 * each printable ASCII other than space. 1 when valid (NULL is not). */
int voutbox_valid_id(const char *id, size_t max);

/* An endpoint list given to open: n in 0..max_n, each name 1..max_name
 * bytes, no name twice. */
vigil_status voutbox_check_endpoints(const char *const *endpoints, int n, int max_n, size_t max_name,
                                     vigil_error *err);

/* The alerts given to an append: n >= 0 (alerts may be NULL only when n is
 * 0), each with a valid id (at most id_max) and 1..max_len bytes of JSON. */
vigil_status voutbox_check_alerts(const vigil_alert_record *alerts, int n, size_t id_max, size_t max_len,
                                  vigil_error *err);

/* The refs given to an ack: n >= 0, refs non-NULL when n > 0, each a
 * non-empty position. seqs (may be NULL: only check) gets n positions. */
vigil_status voutbox_parse_refs(const char *const *refs, int n, uint64_t *seqs, vigil_error *err);

/* Initialise a condition variable on CLOCK_MONOTONIC, the clock of
 * voutbox_read's deadline. */
void voutbox_cond_init(pthread_cond_t *c);

/* What voutbox_read needs of a backend that holds its alerts in memory
 * under one mutex (file, memory): the lock, the condition variable its
 * append broadcasts (made by voutbox_cond_init), the endpoint names, and
 * scan, which copies into out up to max alerts that endpoint i has not
 * acked, with positions after `from`, in order (mu held). scan returns how
 * many it copied; on failure it sets *s and err and returns the number
 * copied before (they are freed here). Borrowed for the call only. */
typedef struct voutbox_held {
    void *self;                      /* given back to scan; NULL: bad argument */
    pthread_mutex_t *mu;
    pthread_cond_t *appended;
    char *const *names;
    int neps;
    int (*scan)(void *self, int i, uint64_t from, vigil_alert_record *out, int max, vigil_status *s,
                vigil_error *err);
} voutbox_held;

/* read() (outbox.h) of such a backend: checks the arguments, parses
 * `after`, finds ep, scans, and when nothing is there waits up to wait_ms
 * (CLOCK_MONOTONIC) for an append and scans again. */
vigil_status voutbox_read(const voutbox_held *h, const char *ep, const char *after, vigil_alert_record *out, int max,
                          int *n, int wait_ms, vigil_error *err);

/* One dead letter as one line: {"endpoint","alert_id","rule","key",
 * "reason","attempts","dead_at","alert"} (dead_at: now, RFC 3339 ms UTC;
 * alert: e->json as JSON, or as a string when it does not parse, or null)
 * followed by '\n'. malloc'd, the caller frees; *len = its length with the
 * '\n'. NULL: no memory. */
char *voutbox_dead_line(const char *ep, const vigil_alert_record *e, const char *reason, int attempts,
                        size_t *len);

/* The start of list_dead(): checks ob and json, sets *json to NULL, clamps
 * *limit (<= 0: VOUTBOX_DEAD_LIMIT_DEFAULT; at most VOUTBOX_DEAD_LIMIT_MAX)
 * and, when arr is not NULL, creates the empty array *arr (caller owns). */
vigil_status voutbox_list_dead_begin(const void *ob, char **json, int *limit, cJSON **arr, vigil_error *err);

/* The end of list_dead(): prints arr unformatted into *json (malloc'd, the
 * caller frees with free()) and deletes arr. */
vigil_status voutbox_list_dead_end(cJSON *arr, char **json, vigil_error *err);

#endif
