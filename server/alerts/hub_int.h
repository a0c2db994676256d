/* hub_int.h — what the alert hub's two files share (hub.c: the ring, the
 * publishers and the SSE streams; hub_list.c: GET /v1/alerts and the
 * problem documents): the ring's slot, the hub itself and the HTTP helpers.
 * Private to server/alerts. */
#ifndef VIGIL_ALERTS_HUB_INT_H
#define VIGIL_ALERTS_HUB_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <microhttpd.h>
#include "hub.h"

#define PREFIX_MAX 48
#define SSE_BLOCK 16384
#define SSE_RETRY "retry: 3000\n\n"
#define SSE_KEEPALIVE ": keepalive\n\n"
#define MAX_CAP 10000000u

struct stream;

struct slot {
    uint64_t seq;          /* 0: empty */
    char *block;           /* the allocation; frame and strings live in it */
    const char *frame;     /* SSE frame, frame_len bytes (not NUL-terminated) */
    size_t frame_len;
    const char *json;      /* slice of frame */
    size_t json_len;
    const char *rule, *severity, *key;   /* NUL-terminated, in block */
    int64_t ts;
    int64_t at_ms;         /* wall clock when published (≈ the alert's detected_at) */
    char id[33];           /* the alert's id when its JSON starts with it, else "" */
    signed char mode;      /* 0 active, 1 shadow, -1 unknown */
};

struct vigil_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* keepalive thread: streams appeared, or closing */
    struct slot *ring;
    size_t cap, count;
    uint64_t last_seq, published;
    struct stream *streams;
    size_t nstreams;
    unsigned refs;         /* 1 for the owner + 1 per stream */
    bool closing;
    int keepalive_ms;
    size_t max_streams;    /* 0: no limit; more answer 503 */
    unsigned long long refused;   /* streams refused over max_streams */
    bool ka_started;
    pthread_t ka_thread;
    vigil_hub_triage_fn triage;   /* dispositions (the control wing's), or NULL */
    void *triage_ud;
    /* cluster mode (follow.c): the ring's alert ids, so one id is kept once */
    uint64_t *idx;         /* open addressing by id: sequence numbers (0: empty; stale ones skipped) */
    size_t idx_cap;        /* a power of two >= 4 × cap */
    size_t idx_adds;       /* since the last rebuild: at cap, rebuilt from the ring (drops stale ones) */
    unsigned long long dups;      /* alerts not kept: their id was in the ring */
    struct vhub_follow *follow;   /* the NATS subscriptions, or NULL */
};

/* follow.c, under hub->mu: whether the ring holds an alert with this id (32
 * hex digits); remember the alert of sequence seq (its slot is filled). */
bool vhub_idx_has(vigil_hub *hub, const char *id);
void vhub_idx_add(vigil_hub *hub, uint64_t seq);
void vhub_follow_free(vigil_hub *hub);   /* at destroy */

static inline uint64_t oldest_seq(const vigil_hub *hub) { return hub->last_seq - hub->count + 1; }

static inline const struct slot *slot_of(const vigil_hub *hub, uint64_t seq) { return &hub->ring[(seq - 1) % hub->cap]; }

/* An RFC 9457 problem document; retry: a Retry-After value or NULL. */
enum MHD_Result vhub_problem_h(struct MHD_Connection *conn, unsigned status, const char *title, const char *detail,
                               const char *retry);
enum MHD_Result vhub_problem(struct MHD_Connection *conn, unsigned status, const char *title, const char *detail);
/* the same with Retry-After: 5 */
enum MHD_Result vhub_problem_retry(struct MHD_Connection *conn, unsigned status, const char *title,
                                   const char *detail);
/* Strict unsigned decimal: digits only, no sign, no overflow. */
bool vhub_parse_u64(const char *s, uint64_t *out);
/* A query argument, NULL when absent or empty. */
const char *vhub_arg(struct MHD_Connection *conn, const char *name);

#endif
