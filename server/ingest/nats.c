/* nats.c — NATS in and out (DESIGN.md §7), with nats.c.
 *
 * In: a core-NATS subscription on `vigil.events.>` (configurable): each
 * message is one JSON event or NDJSON lines. Core NATS is at-most-once: a
 * message lost before it reaches us is not redelivered. JetStream ingest
 * (jetstream.c) is the durable path; with it on, core NATS is not
 * subscribed: every event takes one path. The callback decodes and routes; when
 * the worker queues are full it waits for room, which backs pressure up into
 * the subscription's pending buffer (limits raised below) instead of
 * dropping. A bad line is counted and logged, the others go on.
 * Out: every alert to `vigil.alerts.<rule>`, shadow ones to
 * `vigil.shadow.<rule>`, the alert JSON itself (not the webhook envelope). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/server_int.h"

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    vigil_server *s = closure;
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    const char *p = data, *end = data + len;
    int line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *a = p, *b = le;
        p = nl ? nl + 1 : end;
        while (a < b && (*a == ' ' || *a == '\r' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\r' || b[-1] == '\t')) b--;
        if (a == b) continue;
        vigil_event *ev;
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vigil_event_decode_json(s->rs, &s->cfg.ev.decode, a, (size_t)(b - a), NULL, 1, &ev, &err);
        if (st != VIGIL_OK) {
            unsigned long long n = atomic_fetch_add(st == VIGIL_ENOKEY ? &s->rejected_nokey : &s->rejected_bad, 1);
            if (n < 20) fprintf(stderr, "vigil: NATS %s line %d rejected: %s\n", natsMsg_GetSubject(msg), line, err.msg);
            continue;
        }
        st = vsrv_enqueue(s, &ev, 1, NULL, 1);
        if (st != VIGIL_OK) {
            vigil_event_release(ev);
            atomic_fetch_add(&s->rejected_full, 1);
            continue;
        }
        atomic_fetch_add(&s->nats_events, 1);
    }
    natsMsg_Destroy(msg);
}

static void on_reconnected(natsConnection *nc, void *closure) {
    (void)nc;
    vjs_on_reconnected(closure);
}

vigil_status vnats_start(vigil_server *s, vigil_error *err) {
    natsOptions *o = NULL;
    natsStatus ns = natsOptions_Create(&o);
    if (ns == NATS_OK) ns = natsOptions_SetURL(o, s->cfg.nats_url);
    if (ns == NATS_OK) ns = natsOptions_SetMaxReconnect(o, -1);
    if (ns == NATS_OK) ns = natsOptions_SetReconnectWait(o, 500);
    if (ns == NATS_OK) ns = natsOptions_SetName(o, "vigil");
    if (ns == NATS_OK) ns = natsOptions_SetReconnectedCB(o, on_reconnected, s);
    if (ns == NATS_OK) ns = natsConnection_Connect(&s->nc, o);
    natsOptions_Destroy(o);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cannot connect to NATS at %s: %s", s->cfg.nats_url,
                               natsStatus_GetText(ns));
    if (s->cfg.jetstream) {   /* every event takes one path: the stream (jetstream.c) */
        vigil_status st = vjs_start(s, err);
        if (st != VIGIL_OK) {
            vjs_stop(s);
            natsConnection_Destroy(s->nc);
            s->nc = NULL;
        }
        return st;
    }
    ns = natsConnection_Subscribe(&s->sub, s->nc, s->cfg.subject, on_msg, s);
    if (ns == NATS_OK) ns = natsSubscription_SetPendingLimits(s->sub, 1000000, 1024 * 1024 * 1024);
    if (ns != NATS_OK) {
        natsConnection_Destroy(s->nc);
        s->nc = NULL;
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cannot subscribe to '%s': %s", s->cfg.subject,
                               natsStatus_GetText(ns));
    }
    natsConnection_Flush(s->nc);
    return VIGIL_OK;
}

void vnats_stop(vigil_server *s) {
    if (s->sub) {
        natsSubscription_Unsubscribe(s->sub);
        natsSubscription_WaitForDrainCompletion(s->sub, 100);
        natsSubscription_Destroy(s->sub);
        s->sub = NULL;
    }
    if (s->nc && atomic_load(&s->stopping) >= 2) {
        natsConnection_FlushTimeout(s->nc, 2000);
        natsConnection_Destroy(s->nc);
        s->nc = NULL;
    }
}

void vnats_publish_alert(vigil_server *s, const valert *a) {
    char subj[128];
    snprintf(subj, sizeof subj, "vigil.%s.%s", a->mode == VIGIL_MODE_SHADOW ? "shadow" : "alerts", a->rule_name);
    if (natsConnection_Publish(s->nc, subj, a->json, (int)a->len) == NATS_OK) atomic_fetch_add(&s->nats_published, 1);
}

/* A late event (older than the watermark minus the allowed lateness: never
 * matched) goes to vigil.late.<key field> as it came, so that nothing is
 * dropped silently (DESIGN.md §7). Called from a worker thread; natsConnection
 * is thread-safe. */
void vnats_publish_late(vigil_server *s, const vigil_event *ev, const char *key_field) {
    char subj[160];
    size_t jl;
    const char *js = vigil_event_json(ev, &jl);
    snprintf(subj, sizeof subj, "vigil.late.%s", key_field);
    if (js && natsConnection_Publish(s->nc, subj, js, (int)jl) == NATS_OK) atomic_fetch_add(&s->nats_late_published, 1);
}
