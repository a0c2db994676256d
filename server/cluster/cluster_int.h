/* cluster_int.h — the cluster wing's state, shared by its files only:
 * cluster.c (life, thread, accessors), kv.c (buckets and snapshots),
 * members.c (the members bucket), leases.c (taking, renewing, releasing
 * pairs) and view.c (GET /v1/cluster).
 *
 * Locking: `mu` guards what other threads read or set (held/epoch of each
 * pair, the fenced flags, the groups, the versions, the view, the stats).
 * The cluster thread alone writes the pairs' lease fields and makes network
 * calls, and it never calls a callback with `mu` held. */
#ifndef VIGIL_CLUSTER_INT_H
#define VIGIL_CLUSTER_INT_H

#include <pthread.h>
#include <stdint.h>
#include "cluster.h"
#include "server/common/pairs.h"

#define VCL_NAME 128   /* an instance name (1..100 bytes) with its NUL */

typedef struct vcl_pair {
    /* ours; written by the cluster thread under mu, read by anyone under mu */
    int held;
    uint64_t epoch;          /* while held */
    int fenced;              /* vigil_cluster_fenced asked for a loss */
    /* the cluster thread's alone */
    uint64_t rev;            /* the revision of our last write of the lease */
    _Atomic int64_t renewed_ms;   /* when that write succeeded (our clock); read by vigil_cluster_fresh_epoch */
    /* the view of the last heartbeat, under mu */
    char owner[VCL_NAME];    /* "" when no live lease */
    uint64_t seen_epoch;
    int64_t lease_age_ms;    /* -1 when no live lease */
} vcl_pair;

typedef struct vcl_member {
    char instance[VCL_NAME];
    char *http;              /* malloc'd or NULL */
    char *versions;          /* the JSON object's text, malloc'd, or NULL */
    int64_t age_ms;
    int live;
} vcl_member;

/* One KV entry of a bucket snapshot (the latest revision of each key). */
typedef struct vcl_kv_entry {
    char *key;
    char *value;             /* a NUL-terminated copy of len bytes */
    int len;
    uint64_t rev;
    int64_t created_ms;      /* the NATS server's time of the write */
    int deleted;             /* a delete or purge marker */
} vcl_kv_entry;

typedef struct vcl_snapshot {
    vcl_kv_entry *e;         /* sorted by key */
    int n, cap;
} vcl_snapshot;

struct vigil_cluster {
    vigil_cluster_config cfg;        /* the strings and groups point at the copies below */
    char instance[VCL_NAME];
    char member_key[VIGIL_PAIR_NAME_MAX];
    char kv_prefix[64];
    char *http_url, *redis_prefix;
    int64_t started_ms, io_ms, live_ms;
    jsCtx *js;
    kvStore *members_kv, *leases_kv;
    vigil_redis *redis;

    pthread_mutex_t mu;
    pthread_cond_t cv;               /* CLOCK_MONOTONIC */
    pthread_t thread;
    int thread_started, stopping, crashed, joined;
    int ngroups;
    char *groups[VIGIL_CLUSTER_MAX_GROUPS];    /* set once per index, never moved */
    char *gtokens[VIGIL_CLUSTER_MAX_GROUPS];
    vcl_pair *pairs[VIGIL_CLUSTER_MAX_GROUPS]; /* partitions each */
    int fenced_pending;
    char *versions;                  /* JSON object text */
    uint64_t (*lag)(void *ud, int g, int p);
    void *lag_ud;
    vcl_member *members;             /* the view: every entry of the bucket */
    int nmembers;
    vigil_cluster_stats stats;

    /* the cluster thread's alone */
    char **live;                     /* live member names (self included) */
    int nlive;
    int64_t redis_warned_ms;
    int nats_away;                   /* a renewal went unanswered (logged once until one succeeds) */
};

/* kv.c */
vigil_status vcl_kv_open(vigil_cluster *c, const char *suffix, kvStore **out, vigil_error *err);
vigil_status vcl_kv_snapshot(vigil_cluster *c, kvStore *kv, int max_entries, vcl_snapshot *out);
const vcl_kv_entry *vcl_snapshot_find(const vcl_snapshot *s, const char *key);
void vcl_snapshot_free(vcl_snapshot *s);
const char *vcl_nats_why(natsStatus s);

/* members.c: put our entry, read the bucket, compute the live list and the view. */
int vcl_members_tick(vigil_cluster *c, int64_t now);   /* -1: NATS did not answer */
void vcl_members_leave(vigil_cluster *c);
void vcl_members_free(vigil_cluster *c);

/* leases.c */
int vcl_leases_renew(vigil_cluster *c, int64_t now);   /* -1: NATS did not answer */
void vcl_leases_tick(vigil_cluster *c, int64_t now);
void vcl_leases_fenced(vigil_cluster *c);
void vcl_leases_release_all(vigil_cluster *c);

#endif
