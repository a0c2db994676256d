/* dispatch_int.h — the dispatcher's private parts, shared by its two files
 * and by nothing else:
 *   dispatch.c         the endpoint threads and their libcurl multi loop:
 *                      create/destroy, building and starting requests,
 *                      collecting finished transfers, per-key scheduling;
 *   dispatch_policy.c  what becomes of each alert at an endpoint (the policy
 *                      of dispatch.h): the window of read alerts and their
 *                      states, reading and filtering, retry with backoff,
 *                      dead letters, 410 Gone, delivery and acks.
 * Everything in an endpoint below "endpoint thread only" belongs to that
 * endpoint's thread; the counters are atomics read by the stats getters. */
#ifndef VIGIL_DISPATCH_INT_H
#define VIGIL_DISPATCH_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "dispatch.h"
#include "sign.h"

#define WINDOW 1024               /* read alerts held per endpoint */
#define READ_BATCH 256
#define MAX_PENDING_ACKS (4 * WINDOW)
#define KEYSET (2 * WINDOW)       /* power of two > WINDOW */
#define BUCKETS vigil_dispatch_buckets
#define NBUCKETS VIGIL_DISPATCH_NBUCKETS

enum { Q_READY, Q_FLIGHT, Q_WAIT, Q_DEAD };

/* One read alert in an endpoint's window. */
typedef struct item {
    vigil_alert_record e;    /* owns e.json */
    char *body;              /* the envelope; malloc'd */
    size_t blen;
    int state;
    int attempts;
    long long first_ms;      /* monotonic, first attempt */
    long long due_ms;        /* Q_WAIT: when the retry may start */
    char why[256];           /* last failure; Q_DEAD: the dead-letter reason */
    struct item *prev, *next;
} item;

typedef struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    item *it;                /* NULL when free */
    long long deadline_ms;   /* monotonic: the attempt times out then (checked by the thread, not libcurl) */
    struct slot *next_free;
    char errbuf[CURL_ERROR_SIZE];
} slot;

typedef struct endpoint {
    struct vigil_dispatch *d;
    char name[65];
    char *url, *label;
    vigil_webhook_signer *signer;   /* NULL: unsigned */
    char **rules;
    int nrules;
    int min_sev;
    int concurrency;
    long timeout_ms, backoff_ms, max_backoff_ms, horizon_ms;
    int max_attempts;              /* 0: no limit */

    pthread_t thread;
    int started;
    CURLM *multi;
    slot *slots, *free_slots;

    /* endpoint thread only */
    item *head, *tail;
    int nitems, ninflight, nwait, ndead, nready;
    char after[VIGIL_ALERT_REF_MAX];
    char **acks;
    int nacks, capacks;
    int nacks_delivered, nacks_filtered;   /* of nacks: counted as such once the ack is in the outbox */
    long long ack_retry_ms, dead_retry_ms, next_read_ms;
    int disabled;
    uint64_t rng;
    long long log_ms;
    unsigned long quiet;
    struct { const char *k; unsigned gen; } keys[KEYSET];
    unsigned gen;

    atomic_ullong delivered, filtered, dead, attempts, retries, outbox_errors, inflight, window;
    atomic_int disabled_flag;
    atomic_ullong hist[NBUCKETS + 1];
    atomic_ullong hist_sum_us, hist_count;
} endpoint;

struct vigil_dispatch {
    vigil_outbox *ob;
    endpoint *eps;
    int n;
    long shutdown_ms;
    atomic_int stopping;
    atomic_llong deadline_ms;
};

static inline long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the policy (dispatch_policy.c); endpoint thread only ---------------- */

/* info < low < medium < high < critical: 0..4; -1 when unknown. */
int vdisp_severity_rank(const char *s);
/* Move it to state (keeps the per-state counts). */
void vdisp_set_state(endpoint *ep, item *it, int state);
/* Unlink it from the window and free it (left unacked). */
void vdisp_window_drop(endpoint *ep, item *it);
/* Read a batch after ep->after (blocking up to wait_ms) into the window;
 * buf: READ_BATCH records of scratch. */
void vdisp_do_read(endpoint *ep, vigil_alert_record *buf, int wait_ms);
/* Write the pending acks / dead letters (when due, or now with force). */
void vdisp_flush_acks(endpoint *ep, long long now, int force);
void vdisp_flush_dead(endpoint *ep, long long now, int force);
/* A failed attempt (it->why says why): another one after the backoff, or
 * the dead-letter list once the horizon would be passed. */
void vdisp_retry_or_dead(endpoint *ep, item *it, long retry_after_s);
/* A transfer of it finished (it is back in Q_READY): classify the answer
 * (rc; code and retry_after_s when rc is CURLE_OK; errbuf: libcurl's
 * message, may be ""). */
void vdisp_answered(endpoint *ep, item *it, CURLcode rc, long code, long retry_after_s, const char *errbuf);

#endif
