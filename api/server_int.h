/* server_int.h — the server's private parts, shared by server.c (workers,
 * routing, sinks), http.c (the HTTP API) and nats.c (NATS in and out). */
#ifndef VIGIL_SERVER_INT_H
#define VIGIL_SERVER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <nats/nats.h>
#include "server.h"
#include "hub.h"
#include "webhook.h"
#include "vigil/engine.h"

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

typedef struct vitem {           /* one event for one key group */
    vigil_event *ev;
    int group;
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
    atomic_ullong keys, runs, processed, late, commits, commit_errors, keys_expired, runs_evicted;
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
    vigil_webhook *webhook;
    natsConnection *nc;
    natsSubscription *sub;
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
void vwaiter_release(vwaiter *w);
void vsrv_wait_register(vigil_server *s, vwaiter *w);

/* http.c */
vigil_status vhttp_start(vigil_server *s, vigil_error *err);
void vhttp_stop(vigil_server *s);

/* nats.c */
vigil_status vnats_start(vigil_server *s, vigil_error *err);
void vnats_stop(vigil_server *s);
void vnats_publish_alert(vigil_server *s, const valert *a);
void vnats_publish_late(vigil_server *s, const vigil_event *ev, const char *key_field);

#endif
