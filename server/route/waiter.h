/* waiter.h — a request that waits for the alerts of its event
 * (POST /v1/events?wait=MS, DESIGN.md §6).
 *
 * The ingest handler creates a waiter for its one event, suspends its HTTP
 * connection and registers the waiter with the deadline timer; each worker
 * that processes the event for one key group appends the alerts it produced
 * and marks its part done. When every part is done — or the deadline passes
 * first — the waiter calls its wake function once (the handler resumes its
 * connection there) and the handler answers from vigil_waiter_take.
 *
 * Ownership: refcounted. The creator holds one reference; every queue item
 * and the timer hold their own. vigil_waiter_forget (the connection went
 * away) guarantees that wake is never called afterwards. Threads: every
 * function is thread-safe. */
#ifndef VIGIL_WAITER_H
#define VIGIL_WAITER_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/status.h"

typedef struct vigil_waiter vigil_waiter;
typedef struct vigil_waiters vigil_waiters;
typedef void (*vigil_waiter_wake_fn)(void *ctx);

#define VIGIL_WAITER_MAX_BYTES (8u << 20)   /* alert JSON kept per waiter; more is cut (counted) */

/* A waiter for `pending` parts (key groups the event goes to), due at
 * deadline_ms (wall clock). NULL when out of memory. */
vigil_waiter *vigil_waiter_create(int pending, int64_t deadline_ms, vigil_waiter_wake_fn wake, void *ctx);
void vigil_waiter_retain(vigil_waiter *w);
void vigil_waiter_release(vigil_waiter *w);   /* accepts NULL */

/* Worker side: one alert's JSON (copied), then one part done. */
void vigil_waiter_append(vigil_waiter *w, const char *json, size_t len);
void vigil_waiter_done(vigil_waiter *w);

/* Handler side, after wake: *body = malloc'd {"alerts":[…]} and returns 1
 * when every part finished; returns 0 when the deadline passed first
 * (*body NULL). -1 when out of memory. The waiter no longer wakes anyone. */
int vigil_waiter_take(vigil_waiter *w, char **body);
/* The connection is gone: never call wake again. */
void vigil_waiter_forget(vigil_waiter *w);

/* The deadline timer: one thread that wakes waiters whose deadline passed. */
vigil_status vigil_waiters_create(vigil_waiters **out);
/* Watch w until it finishes or its deadline passes (takes a reference).
 * A waiter already done (created with nothing pending) is woken here:
 * call it after the connection is suspended. */
void vigil_waiters_add(vigil_waiters *ws, vigil_waiter *w);
/* Time out whatever still waits, stop the thread, free. Accepts NULL. */
void vigil_waiters_destroy(vigil_waiters *ws);

#endif
