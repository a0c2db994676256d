/* deliveries.h — shared checks of the crash and cluster tests (deliveries.c):
 * sets of alert ids, a `vigil replay` output and a webhook receiver's file
 * (tests/tools/webhook_receiver.c) read into them, and every assertion on
 * what the receiver got. Failures are CUnit assertions with a message
 * (VT_FAILF), printed as they happen. */
#ifndef VIGIL_TEST_DELIVERIES_H
#define VIGIL_TEST_DELIVERIES_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include "harness.h"

/* Record a CUnit failure with a formatted message and print it. */
void vt_fail_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define VT_FAILF(...) vt_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* The whole file, NUL-terminated (malloc'd; NULL if unreadable); *len its size. */
char *vt_slurp_len(const char *path, size_t *len);
/* o[name] when it is a string, else NULL. */
const char *vt_str_item(const cJSON *o, const char *name);
/* "exit status N" / "killed by signal N (…)" for a waitpid status. */
void vt_describe_status(int st, char *buf, size_t n);
/* Run argv to completion within timeout_ms (output to log): its exit code, or -1. */
int vt_run(const char *const argv[], const char *log, int timeout_ms);
/* "<marker><number>" in p's log: the number (a port), or -1 when p exits or the deadline passes. */
int vt_wait_log_number(vt_proc *p, const char *log, const char *marker, int timeout_ms);

/* A set of alert ids, each with a description for messages. */
typedef struct vt_ident {
    char id[72];
    char desc[112];
} vt_ident;
typedef struct vt_idset {
    vt_ident *v;
    size_t n, cap;
} vt_idset;
void vt_set_add(vt_idset *s, const char *id, const char *desc);
void vt_set_free(vt_idset *s);
size_t vt_set_normalize(vt_idset *s);   /* sort, drop repeats; returns how many */
const vt_ident *vt_set_find(const vt_idset *s, const char *id);   /* s normalized */
/* Both normalized: prints up to 20 missing and unexpected ids; 1 when equal. */
int vt_set_equal(const char *what, const vt_idset *got, const vt_idset *want);
void vt_alert_desc(const cJSON *a, char *buf, size_t n);
/* A replay's output: active alert ids into active, shadow into shadow (only
 * alerts whose "event" starts with event_prefix, when given). -1 when the
 * file cannot be read or a line is not an alert. */
int vt_load_alerts(const char *path, const char *event_prefix, vt_idset *active, vt_idset *shadow);

/* The receiver's complete lines: distinct webhook ids into got (may be NULL); the number of lines. */
long vt_received_ids(const char *path, vt_idset *got);
size_t vt_count_present(const vt_idset *got, const vt_idset *want);
/* Every assertion on the receiver's file rcv_out (see deliveries.c); prints
 * "crash test: N alerts, D duplicate deliveries, K kills". */
void vt_check_deliveries(const char *name, const char *rcv_out, int kills, const vt_idset *want,
                         const vt_idset *shadow);

#endif
