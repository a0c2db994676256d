/* reader.c — the read-ahead thread of `vigil replay` (see reader.h).
 *
 * A ring of QDEPTH batches under one mutex: the reader fills a batch
 * outside the lock and publishes it; the consumer takes a whole batch per
 * lock. With 256 events a batch the lock is taken about 5,000 times a
 * second at full speed, which costs nothing next to decoding. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "reader.h"

#define QDEPTH 8

typedef struct rbatch {
    vigil_event *ev[VIGIL_READER_BATCH];
    int n;
    double progress;
} rbatch;

struct vigil_reader {
    vigil_merge *m;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    rbatch q[QDEPTH];
    int head, count;
    rbatch back[QDEPTH];   /* events returned for release */
    int bhead, bcount;
    int done;      /* the reader reached the end of input */
    int stop;      /* the consumer wants it to end */
};

/* Release what the consumer gave back. Called with the lock held; the
 * releases themselves run unlocked. */
static void drain_back(vigil_reader *r) {
    while (r->bcount) {
        rbatch b = r->back[r->bhead];
        r->bhead = (r->bhead + 1) % QDEPTH;
        r->bcount--;
        pthread_cond_broadcast(&r->not_full);
        pthread_mutex_unlock(&r->mu);
        for (int i = 0; i < b.n; i++) vigil_event_release(b.ev[i]);
        pthread_mutex_lock(&r->mu);
    }
}

static void *run(void *arg) {
    vigil_reader *r = arg;
    rbatch b;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        drain_back(r);
        pthread_mutex_unlock(&r->mu);
        b.n = 0;
        vigil_event *ev;
        while (b.n < VIGIL_READER_BATCH && vigil_merge_next(r->m, &ev, NULL) == VIGIL_OK) b.ev[b.n++] = ev;
        b.progress = vigil_merge_progress(r->m);
        pthread_mutex_lock(&r->mu);
        for (;;) {
            drain_back(r);
            if (r->count < QDEPTH || r->stop) break;
            pthread_cond_wait(&r->not_full, &r->mu);
        }
        if (r->stop) {
            pthread_mutex_unlock(&r->mu);
            for (int i = 0; i < b.n; i++) vigil_event_release(b.ev[i]);
            break;
        }
        if (b.n) {
            r->q[(r->head + r->count) % QDEPTH] = b;
            r->count++;
        }
        int end = b.n < VIGIL_READER_BATCH;
        if (end) r->done = 1;
        pthread_cond_signal(&r->not_empty);
        pthread_mutex_unlock(&r->mu);
        if (end) break;
    }
    return NULL;
}

vigil_reader *vigil_reader_start(vigil_merge *m) {
    vigil_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->m = m;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->not_full, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    if (pthread_create(&r->th, NULL, run, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->not_full);
        pthread_cond_destroy(&r->not_empty);
        free(r);
        return NULL;
    }
    return r;
}

int vigil_reader_next(vigil_reader *r, vigil_event **evs, double *progress) {
    pthread_mutex_lock(&r->mu);
    while (r->count == 0 && !r->done) pthread_cond_wait(&r->not_empty, &r->mu);
    int n = 0;
    if (r->count) {
        rbatch *b = &r->q[r->head];
        n = b->n;
        memcpy(evs, b->ev, (size_t)n * sizeof *evs);
        if (progress) *progress = b->progress;
        r->head = (r->head + 1) % QDEPTH;
        r->count--;
        pthread_cond_broadcast(&r->not_full);
    }
    pthread_mutex_unlock(&r->mu);
    return n;
}

void vigil_reader_recycle(vigil_reader *r, vigil_event **evs, int n) {
    pthread_mutex_lock(&r->mu);
    while (r->bcount == QDEPTH && !r->done && !r->stop) pthread_cond_wait(&r->not_full, &r->mu);
    if (r->bcount == QDEPTH || r->done) {   /* the reader is gone or ending: release here */
        pthread_mutex_unlock(&r->mu);
        for (int i = 0; i < n; i++) vigil_event_release(evs[i]);
        return;
    }
    rbatch *b = &r->back[(r->bhead + r->bcount) % QDEPTH];
    memcpy(b->ev, evs, (size_t)n * sizeof *evs);
    b->n = n;
    r->bcount++;
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
}

void vigil_reader_destroy(vigil_reader *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->not_full);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    while (r->count) {
        rbatch *b = &r->q[r->head];
        for (int i = 0; i < b->n; i++) vigil_event_release(b->ev[i]);
        r->head = (r->head + 1) % QDEPTH;
        r->count--;
    }
    while (r->bcount) {
        rbatch *b = &r->back[r->bhead];
        for (int i = 0; i < b->n; i++) vigil_event_release(b->ev[i]);
        r->bhead = (r->bhead + 1) % QDEPTH;
        r->bcount--;
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->not_full);
    pthread_cond_destroy(&r->not_empty);
    free(r);
}
