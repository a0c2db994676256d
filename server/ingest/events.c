/* events.c — POST /v1/events (DESIGN.md §6): one JSON event, or an NDJSON
 * batch, all or nothing. The whole batch is decoded and validated before
 * anything is queued; a bad line answers 400 naming the line and nothing of
 * the batch is applied. ?wait=MS answers with the event's alerts (the
 * connection is suspended, never blocking an MHD thread). With JetStream the
 * body is published to the stream as it came (one message, Nats-Msg-Id =
 * SHA-256 of it) and decoded once more only by the fetcher. In cluster mode
 * (issue 14) the publisher threads publish the events' keyed copies instead
 * (rekey.c) and the answer, 202 or 503, says whether all are stored. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ingest_int.h"
#include "batch.h"
#include "server/http/reply.h"
#include "vigil/clock.h"

/* What a suspended request carries until it is resumed. */
typedef struct evreq {
    struct MHD_Connection *conn;
    vigil_waiter *w;             /* ?wait */
    int fail_status;             /* a suspended request that could not be enqueued */
    int pub_wait;                /* suspended while the batch is published to JetStream */
    int pub_status;              /* 202, or 503 when the stream refused */
    size_t pub_events;
    char pub_detail[256];
} evreq;

static void evreq_free(void *p) {
    evreq *e = p;
    if (e->w) {
        vigil_waiter_forget(e->w);   /* never resume a connection that is gone */
        vigil_waiter_release(e->w);
    }
    free(e);
}

static void wake(void *ctx) { MHD_resume_connection(((evreq *)ctx)->conn); }

static void published(void *ctx, int status, const char *detail) {
    evreq *e = ctx;
    e->pub_status = status;
    snprintf(e->pub_detail, sizeof e->pub_detail, "%s", detail);
    MHD_resume_connection(e->conn);
}

static enum MHD_Result answer_resumed(vigil_ingest *ig, struct MHD_Connection *c, evreq *e) {
    if (e->fail_status) {
        if (e->fail_status == 503) return vigil_http_problem(c, 503, "Service Unavailable", "queues are full; retry later", NULL, "1");
        return vigil_http_problem(c, e->fail_status, "Request failed", NULL, NULL, NULL);
    }
    if (e->w) {
        char *body;
        int rc = vigil_waiter_take(e->w, &body);
        if (rc == 0)
            return vigil_http_problem(c, 504, "Gateway Timeout",
                                      "the event was not processed within wait=MS; it stays queued and will be processed",
                                      NULL, NULL);
        if (rc < 0) return MHD_NO;
        enum MHD_Result ret = vigil_http_send_text(c, 200, "application/json", body, strlen(body));
        free(body);
        return ret;
    }
    /* resumed after the publish: the stream answered */
    if (e->pub_status != 202) return vigil_http_problem(c, 503, "Service Unavailable", e->pub_detail, NULL, "1");
    atomic_fetch_add(&ig->http_events, e->pub_events);
    char body[64];
    snprintf(body, sizeof body, "{\"accepted\":%zu}", e->pub_events);
    return vigil_http_send_text(c, 202, "application/json", body, strlen(body));
}

static void release_all(vigil_event **evs, size_t n) {
    for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
    free(evs);
}

/* A new request, decoded with rs (the rules when it came: hot reload). */
static enum MHD_Result handle_new(vigil_ingest *ig, vigil_ruleset *rs, struct MHD_Connection *c, vigil_http_req *r) {
    if (r->too_big) {
        char d[128];
        snprintf(d, sizeof d, "body larger than %zu bytes", ig->cfg.max_body);
        return vigil_http_problem(c, 413, "Content Too Large", d, NULL, NULL);
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    int ndjson = ct && strstr(ct, "ndjson");
    const char *wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
    long wait_ms = -1;
    if (wait) {
        char *end;
        wait_ms = strtol(wait, &end, 10);
        if (*end || wait_ms < 0 || wait_ms > 60000)
            return vigil_http_problem(c, 400, "Bad Request", "wait must be milliseconds between 0 and 60000", NULL, NULL);
        /* issue 14 (h8): the event's alerts come from the instance that owns its pair */
        if (ig->cfg.cluster)
            return vigil_http_problem(c, 400, "Bad Request", "?wait is not available in cluster mode", NULL, NULL);
    }
    /* decode and validate the whole batch first: all or nothing */
    vigil_batch_opts bo = {.mode = ndjson ? VIGIL_BATCH_LINES : VIGIL_BATCH_ONE_EVENT,
                           .policy = VIGIL_BATCH_STOP_AT_FIRST_BAD, .decode = ig->cfg.decode,
                           .max_events = ig->cfg.max_lines ? ig->cfg.max_lines : SIZE_MAX,
                           .max_fields = ig->cfg.max_fields, .max_depth = ig->cfg.max_depth,
                           .max_key_bytes = ig->cfg.max_key_bytes};
    vigil_batch batch;
    vigil_batch_error berr;
    vigil_status bst = vigil_batch_decode(rs, &bo, r->body ? r->body : "", r->len, &batch, &berr);
    if (bst == VIGIL_ENOMEM) return MHD_NO;
    if (bst != VIGIL_OK) {
        atomic_fetch_add(bst == VIGIL_ENOKEY ? &ig->rejected_nokey : &ig->rejected_bad, 1);
        if (berr.limit) vingest_count_limit(ig, berr.limit);
        if (bst == VIGIL_ETOOBIG) {   /* more lines than limits.max_lines */
            atomic_fetch_add(&ig->limit_lines, 1);
            char d[700];
            snprintf(d, sizeof d, "%s (limits.max_lines); nothing of this batch was applied; send smaller batches",
                     berr.msg);
            return vigil_http_problem(c, 413, "Content Too Large", d, NULL, NULL);
        }
        if (berr.line == 0) return vigil_http_problem(c, bst == VIGIL_ETOOBIG ? 413 : 400,
                                                      bst == VIGIL_ETOOBIG ? "Content Too Large" : "Bad Request",
                                                      berr.msg, NULL, NULL);
        char d[700];
        snprintf(d, sizeof d, "line %zu: %s; nothing of this batch was applied", berr.line, berr.msg);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "line", (double)berr.line);
        cJSON_AddNumberToObject(x, "offset", (double)berr.offset);
        cJSON_AddStringToObject(x, "reason", berr.msg);
        if (berr.limit) cJSON_AddStringToObject(x, "limit", berr.limit);
        return vigil_http_problem(c, 400, "Bad Request", d, x, NULL);
    }
    vingest_note_times(ig, VINGEST_SRC_HTTP, batch.events, batch.n);
    /* the events leave the batch: evs owns their references from here */
    vigil_event **evs = batch.events;
    size_t n = batch.n;
    batch.events = NULL;
    batch.n = 0;
    vigil_batch_release(&batch);
    int retry = 0, lim = vigil_http_take(r, (long)n, &retry);   /* the token's rate: nothing applied over it */
    if (lim) {
        release_all(evs, n);
        atomic_fetch_add(&ig->rejected_rate, n);
        char d[200], ra[16];
        snprintf(ra, sizeof ra, "%d", retry);
        if (lim == 413) {
            snprintf(d, sizeof d, "%zu events in one batch are more than this token's rate allows at once (one "
                     "second's worth); send smaller batches", n);
            return vigil_http_problem(c, 413, "Content Too Large", d, NULL, NULL);
        }
        snprintf(d, sizeof d, "this token's rate is used up; nothing of this batch was applied; retry in %d s", retry);
        return vigil_http_problem(c, 429, "Too Many Requests", d, NULL, ra);
    }
    if (wait_ms >= 0) {
        if (n != 1) {
            release_all(evs, n);
            return vigil_http_problem(c, 400, "Bad Request", "wait=MS takes exactly one event", NULL, NULL);
        }
        evreq *e = calloc(1, sizeof *e);
        vigil_waiter *w = e ? vigil_waiter_create(vigil_router_parts(rs, evs[0]), vigil_now_ms() + wait_ms,
                                                  wake, e) : NULL;
        if (!w) {
            free(e);
            release_all(evs, n);
            return MHD_NO;
        }
        e->conn = c;
        e->w = w;
        r->state = e;
        r->state_free = evreq_free;
        MHD_suspend_connection(c);
        vigil_status st = vigil_router_enqueue(ig->cfg.router, rs, evs, 1, w, 0, NULL);
        if (st != VIGIL_OK) {
            vigil_event_release(evs[0]);
            e->fail_status = (st == VIGIL_EFULL || st == VIGIL_EUNAVAILABLE || st == VIGIL_ESTALE) ? 503 : 413;
            vigil_waiter_forget(w);
            vigil_waiter_release(w);
            e->w = NULL;
            MHD_resume_connection(c);
        } else {
            atomic_fetch_add(&ig->http_events, 1);
            vigil_waiters_add(ig->cfg.waiters, w);
        }
        free(evs);
        return MHD_YES;
    }
    /* cluster mode (h8): only NATS matters here (the copies go to the keyed stream, not to this store) */
    if (ig->cfg.cluster ? !ig->nc || natsConnection_Status(ig->nc) != NATS_CONN_STATUS_CONNECTED
                        : vigil_ingest_paused(ig)) {
        release_all(evs, n);
        atomic_fetch_add(&ig->rejected_full, n);
        return vigil_http_problem(c, 503, "Service Unavailable",
                                  "intake is paused: the state store or the event stream is unreachable; nothing of "
                                  "this batch was applied; retry later", NULL, "1");
    }
    if (ig->js || ig->cfg.cluster) {
        /* durable path: the body, as it came, becomes one stream message,
         * all or nothing; the fetcher decodes it like any other */
        release_all(evs, n);
        evreq *e = calloc(1, sizeof *e);
        if (!e) return MHD_NO;
        e->conn = c;
        e->pub_wait = 1;
        e->pub_events = n;
        r->state = e;
        r->state_free = evreq_free;
        MHD_suspend_connection(c);
        vigil_status pst = vjs_publish_async(ig, r->body ? r->body : "", r->len, ndjson ? "ndjson" : "json",
                                             published, e);
        if (pst != VIGIL_OK) {
            e->pub_status = 503;
            snprintf(e->pub_detail, sizeof e->pub_detail, "%s; nothing of this batch was applied; retry later",
                     pst == VIGIL_EFULL ? "too many batches waiting for the event stream"
                                        : "the event stream is not ready");
            MHD_resume_connection(c);
        }
        return MHD_YES;
    }
    vigil_status st = vigil_router_enqueue(ig->cfg.router, rs, evs, (int)n, NULL, 0, NULL);
    if (st != VIGIL_OK) {
        release_all(evs, n);
        atomic_fetch_add(&ig->rejected_full, n);
        if (st == VIGIL_EFULL || st == VIGIL_EUNAVAILABLE)
            return vigil_http_problem(c, 503, "Service Unavailable",
                                      "queues are full; nothing of this batch was applied; retry later", NULL, "1");
        return vigil_http_problem(c, 413, "Content Too Large", "batch larger than a worker queue", NULL, NULL);
    }
    free(evs);
    atomic_fetch_add(&ig->http_events, n);
    char body[64];
    snprintf(body, sizeof body, "{\"accepted\":%zu}", n);
    return vigil_http_send_text(c, 202, "application/json", body, strlen(body));
}

enum MHD_Result vigil_ingest_handle_events(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_ingest *ig = ctx;
    if (r->state) return answer_resumed(ig, c, r->state);
    vigil_ruleset *rs = vigil_router_ruleset(ig->cfg.router);
    enum MHD_Result ret = handle_new(ig, rs, c, r);
    vigil_ruleset_release(rs);
    return ret;
}
