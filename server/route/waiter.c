/* waiter.c — POST /v1/events?wait=MS: a request waiting for its event's
 * alerts (waiter.h), and the one timer thread that times such requests out,
 * sleeping until the earliest deadline. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "waiter.h"
#include "vigil/clock.h"
#include "server/common/log.h"

struct vigil_waiter {
    pthread_mutex_t mu;
    atomic_int refs;
    int pending;                 /* parts not yet processed */
    int done, timed_out, woken;
    int64_t deadline_ms;
    vigil_waiter_wake_fn wake;   /* NULL once forgotten or taken */
    void *ctx;
    char *alerts;                /* JSON array being built: "[a,b" */
    size_t len, cap;
    struct vigil_waiter *next;   /* in the timer's list */
};

struct vigil_waiters {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vigil_waiter *list;
    int stop;
    pthread_t th;
};

vigil_waiter *vigil_waiter_create(int pending, int64_t deadline_ms, vigil_waiter_wake_fn wake, void *ctx) {
    vigil_waiter *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    pthread_mutex_init(&w->mu, NULL);
    atomic_init(&w->refs, 1);
    w->pending = pending;
    w->deadline_ms = deadline_ms;
    w->wake = wake;
    w->ctx = ctx;
    if (pending <= 0) w->done = 1;
    return w;
}

void vigil_waiter_retain(vigil_waiter *w) { atomic_fetch_add(&w->refs, 1); }

void vigil_waiter_release(vigil_waiter *w) {
    if (!w || atomic_fetch_sub(&w->refs, 1) != 1) return;
    pthread_mutex_destroy(&w->mu);
    free(w->alerts);
    free(w);
}

/* Called with w->mu held: wake the handler once. */
static void wake_locked(vigil_waiter *w) {
    if (w->woken || !w->wake) return;
    w->woken = 1;
    w->wake(w->ctx);
}

void vigil_waiter_append(vigil_waiter *w, const char *json, size_t len) {
    pthread_mutex_lock(&w->mu);
    if (w->len + len + 2 > w->cap && w->len + len + 2 <= VIGIL_WAITER_MAX_BYTES) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        while (cap < w->len + len + 2) cap *= 2;
        char *n = realloc(w->alerts, cap);
        if (n) {
            w->alerts = n;
            w->cap = cap;
        }
    }
    if (w->len + len + 2 <= w->cap) {
        char sep = w->len ? ',' : '[';
        w->alerts[w->len++] = sep;
        memcpy(w->alerts + w->len, json, len);
        w->len += len;
    } else {
        vigil_log(VIGIL_LOG_ERROR, "route", "a ?wait answer lost an alert (out of memory or over %u bytes)",
                VIGIL_WAITER_MAX_BYTES);
    }
    pthread_mutex_unlock(&w->mu);
}

void vigil_waiter_done(vigil_waiter *w) {
    pthread_mutex_lock(&w->mu);
    if (--w->pending <= 0 && !w->timed_out) {
        w->done = 1;
        wake_locked(w);
    }
    pthread_mutex_unlock(&w->mu);
}

int vigil_waiter_take(vigil_waiter *w, char **body) {
    *body = NULL;
    pthread_mutex_lock(&w->mu);
    int done = w->done;
    w->wake = NULL;
    int rc = 0;
    if (done) {
        size_t n = w->len + 32;
        char *b = malloc(n);
        if (b) {
            snprintf(b, n, "{\"alerts\":%.*s]}", (int)(w->len ? w->len : 1), w->len ? w->alerts : "[");
            *body = b;
            rc = 1;
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void vigil_waiter_forget(vigil_waiter *w) {
    pthread_mutex_lock(&w->mu);
    w->wake = NULL;
    pthread_mutex_unlock(&w->mu);
}

/* Times out waiters whose deadline passed; sleeps until the earliest one. */
static void *timer_main(void *arg) {
    vigil_waiters *ws = arg;
    pthread_mutex_lock(&ws->mu);
    while (!ws->stop || ws->list) {
        int64_t now = vigil_now_ms(), next = now + 1000;
        vigil_waiter **pp = &ws->list;
        while (*pp) {
            vigil_waiter *w = *pp;
            pthread_mutex_lock(&w->mu);
            int finished = w->done;
            if (!finished && (now >= w->deadline_ms || ws->stop)) {
                w->timed_out = 1;
                finished = 1;
                wake_locked(w);
            }
            pthread_mutex_unlock(&w->mu);
            if (finished) {
                *pp = w->next;
                vigil_waiter_release(w);
                continue;
            }
            if (w->deadline_ms < next) next = w->deadline_ms;
            pp = &w->next;
        }
        if (ws->stop && !ws->list) break;
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
        pthread_cond_timedwait(&ws->cv, &ws->mu, &ts);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

vigil_status vigil_waiters_create(vigil_waiters **out) {
    vigil_waiters *ws = calloc(1, sizeof *ws);
    if (!ws) return VIGIL_ENOMEM;
    pthread_mutex_init(&ws->mu, NULL);
    pthread_cond_init(&ws->cv, NULL);
    if (pthread_create(&ws->th, NULL, timer_main, ws) != 0) {
        free(ws);
        return VIGIL_EIO;
    }
    *out = ws;
    return VIGIL_OK;
}

void vigil_waiters_add(vigil_waiters *ws, vigil_waiter *w) {
    /* done before it was watched: nothing pending from the start (the
     * event's key groups have no rules left: no worker will call done), so
     * no worker woke it and the timer drops it as finished; the connection
     * is suspended by now: wake it here */
    pthread_mutex_lock(&w->mu);
    if (w->done) wake_locked(w);
    pthread_mutex_unlock(&w->mu);
    vigil_waiter_retain(w);
    pthread_mutex_lock(&ws->mu);
    w->next = ws->list;
    ws->list = w;
    pthread_cond_signal(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
}

void vigil_waiters_destroy(vigil_waiters *ws) {
    if (!ws) return;
    pthread_mutex_lock(&ws->mu);
    ws->stop = 1;
    pthread_cond_signal(&ws->cv);
    pthread_mutex_unlock(&ws->mu);
    pthread_join(ws->th, NULL);
    pthread_mutex_destroy(&ws->mu);
    pthread_cond_destroy(&ws->cv);
    free(ws);
}
