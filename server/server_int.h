/* server_int.h — the server's private parts, shared by server.c (workers,
 * routing, sinks), http.c (the HTTP API) and nats.c (NATS in and out). */
#ifndef VIGIL_SERVER_INT_H
#define VIGIL_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <nats/nats.h>
#include "server.h"
#include "server/alerts/hub.h"
#include "server/alerts/webhooks.h"
#include "vigil/engine.h"
#include "vigil/clock.h"

/* A request waiting for the alerts of its event (POST ?wait=MS). */
typedef struct vwaiter {
    pthread_mutex_t mu;
    atomic_int refs;
    int pending;                 /* key groups not yet processed */
    int done, timed_out, responded;
    int64_t deadline_ms;
    struct MHD_Connection *conn; /* resumed when done or timed out */
    char *alerts;                /* JSON array body being built: "[a,b" */
    size_t len, cap;
    struct vwaiter *next;        /* in the server's waiting list */
} vwaiter;

/* One source message (a JetStream message, possibly an NDJSON batch) while
 * its events are in the workers: acked once every item is committed. */
typedef struct vsrcmsg {
    natsMsg *msg;
    uint64_t seq;                /* stream sequence */
    atomic_int refs;             /* items not yet committed, +1 while routing */
} vsrcmsg;

typedef struct vitem {           /* one event for one key group */
    vigil_event *ev;
    int group;
    int part;                    /* partition of the key: vigil_hash(key) % partitions */
    int msg_end;                 /* last item of its source message in this queue */
    uint64_t seq;                /* source stream sequence; 0: none (core NATS, HTTP) */
    vsrcmsg *src;                /* NULL: nothing to ack */
    vwaiter *w;
} vitem;

typedef struct vqueue {          /* bounded; policy when full: the producer is told (EFULL) or waits */
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    vitem *items;
    size_t cap, head, n;
} vqueue;

typedef struct valert {          /* an alert waiting for its batch's commit */
    char *json;
    size_t len;
    int rule;
    vigil_mode mode;
    char id[33], rule_name[64], key[256], severity[16];
    int64_t ts;
    vwaiter *w;
} valert;

typedef struct vworker {
    struct vigil_server *srv;
    int idx;
    pthread_t th;
    vqueue q;
    vigil_engine *eng;
    vigil_store *store;
    valert *alerts;
    size_t nalerts, capalerts;
    vwaiter *cur_waiter;
    int *touched;                /* pairs (g * partitions + p) whose offset this batch moves */
    int ntouched;
    unsigned char *touched_mark;
    vsrcmsg **unacked;           /* memory store: sources waiting for the next snapshot */
    size_t nunacked, capunacked;
    int64_t last_snapshot_ms;
    int dirty_since_snapshot;
    atomic_int store_down;       /* the last commit or load failed: intake pauses */
    atomic_ullong keys, runs, processed, late, commits, commit_errors, keys_expired, runs_evicted;
    atomic_ullong function_errors;   /* Lua function predicates / alert functions that failed */
    atomic_ullong skipped, snapshots, commit_us_sum, commit_count;
} vworker;

struct vigil_server {
    vigil_server_config cfg;
    vigil_ruleset *rs;
    int nworkers;
    vworker *workers;
    atomic_int stopping;
    pthread_mutex_t ingest_mu;   /* makes an HTTP batch's enqueue all-or-nothing */
    struct MHD_Daemon *httpd;
    int port;
    vigil_hub *hub;
    natsConnection *nc;
    natsSubscription *sub;
    /* JetStream (jetstream.c) */
    jsCtx *js;
    natsSubscription *jsub;
    pthread_t fetcher;
    atomic_int js_resync;        /* NATS reconnected: re-position the consumer */
    atomic_int js_stop;          /* the fetcher stops (before the workers drain) */
    int fetcher_started;
    struct vjspub *pub;          /* HTTP → JetStream publisher */
    atomic_ullong js_fetched, js_acked, js_msgs_bad, js_fetch_errors;
    /* offsets: the last applied source sequence per (group, partition),
     * written only by the pair's worker */
    int partitions;
    uint64_t *off_seq;
    int64_t *off_wm;
    vsrcmsg **off_src;           /* the message being applied at off_seq (NULL once committed) */
    struct vigil_outbox *outbox; /* NULL: no endpoints */
    struct vigil_dispatch *dispatch;
    atomic_ullong snap_mask;     /* workers that snapshotted since the outbox's last mark */
    /* waiters with deadlines */
    pthread_mutex_t wmu;
    pthread_cond_t wcond;
    vwaiter *waiting;
    pthread_t reaper;
    int reaper_started;
    /* counters (Prometheus) */
    atomic_ullong http_events, nats_events, rejected_bad, rejected_nokey, rejected_full, nats_errors;
    atomic_ullong *rule_alerts;  /* per rule */
    atomic_ullong alerts_total, nats_published, nats_late_published;
    int64_t started_ms;
};

/* server.c */
/* Route decoded events (one per line) to the workers, all or nothing:
 * EFULL when some queue cannot take its share (nothing is enqueued). With
 * block != 0 waits for space instead (NATS). w may be NULL. Takes over the
 * caller's references to the events on success. */
vigil_status vsrv_enqueue(vigil_server *s, vigil_event **evs, int n, vwaiter *w, int block);
/* The same for the events of one source message (seq, src; src->refs gets
 * one per item). */
vigil_status vsrv_enqueue_src(vigil_server *s, vigil_event **evs, int n, vsrcmsg *src, int block);
/* Drop one reference of src: the last one acks the message and frees it. */
void vsrv_src_release(vigil_server *s, vsrcmsg *src);
/* 1 when intake must pause (a store is down, JetStream unreachable). */
int vsrv_paused(vigil_server *s);
void vwaiter_release(vwaiter *w);
void vsrv_wait_register(vigil_server *s, vwaiter *w);

/* http.c */
vigil_status vhttp_start(vigil_server *s, vigil_error *err);
void vhttp_stop(vigil_server *s);

/* snapshot.c — the memory store's snapshots */
vigil_status vsnap_load(vigil_server *s, vigil_error *err);
vigil_status vsnap_write(vworker *wk, vigil_error *err);

/* jetstream.c */
vigil_status vjs_start(vigil_server *s, vigil_error *err);
void vjs_stop_fetch(vigil_server *s);
void vjs_stop(vigil_server *s);
void vjs_on_reconnected(vigil_server *s);   /* from the NATS reconnect callback */
/* Publish an HTTP body (already validated) as one stream message with
 * Nats-Msg-Id = SHA-256 of the body; conn is suspended by the caller and
 * resumed once the stream acked (*status = 202) or refused (503/500). */
vigil_status vjs_publish_async(vigil_server *s, const char *body, size_t len, struct MHD_Connection *conn,
                               int *status, char *detail, size_t detail_len);

/* nats.c */
vigil_status vnats_start(vigil_server *s, vigil_error *err);
void vnats_stop(vigil_server *s);
void vnats_publish_alert(vigil_server *s, const valert *a);
void vnats_publish_late(vigil_server *s, const vigil_event *ev, const char *key_field);

#endif
