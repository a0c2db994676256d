/* http.c — the HTTP API v1 (DESIGN.md §6) on libmicrohttpd.
 *
 * Ingest (POST /v1/events: one JSON event or an NDJSON batch, all or
 * nothing; ?wait=MS answers with the event's alerts), viewers (alerts list
 * and SSE stream via the hub, rules), operations (/metrics in Prometheus
 * text format, /healthz, /readyz) and the dashboard. Errors are
 * application/problem+json (RFC 9457). The daemon runs an internal polling
 * thread pool with suspend/resume: a waiting request is suspended, never
 * blocking an MHD thread, and resumed by the worker that finishes its event
 * or by the server's deadline timer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "server/server_int.h"
#include "server/state/redis_store.h"
#include "server/alerts/dispatch.h"
#include "vigil/rules.h"

typedef struct req {
    char *body;
    size_t len, cap;
    int too_big;
    vwaiter *w;
    int fail_status;             /* set when a suspended request could not be enqueued */
    int pub_wait;                /* suspended while the batch is published to JetStream */
    int pub_status;              /* 202, or 503 when the stream refused */
    size_t pub_events;
    char pub_detail[256];
} req;

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *type, const char *body,
                                 size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return MHD_NO;
    enum MHD_Result r = send_text(c, status, "application/json", s, strlen(s));
    free(s);
    return r;
}

/* RFC 9457 problem details; extra (may be NULL) is merged in. */
static enum MHD_Result problem(struct MHD_Connection *c, unsigned status, const char *title, const char *detail,
                               cJSON *extra, const char *retry_after) {
    cJSON *o = extra ? extra : cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "about:blank");
    cJSON_AddStringToObject(o, "title", title);
    cJSON_AddNumberToObject(o, "status", status);
    if (detail) cJSON_AddStringToObject(o, "detail", detail);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "application/problem+json");
    if (retry_after) MHD_add_response_header(r, "Retry-After", retry_after);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- POST /v1/events ------------------------------------------------------------ */

static enum MHD_Result answer_waiter(struct MHD_Connection *c, req *r) {
    vwaiter *w = r->w;
    pthread_mutex_lock(&w->mu);
    int done = w->done;
    w->responded = 1;
    w->conn = NULL;
    char *body = NULL;
    if (done) {
        size_t n = w->len + 32;
        body = malloc(n);
        if (body) snprintf(body, n, "{\"alerts\":%.*s]}", (int)(w->len ? w->len : 1), w->len ? w->alerts : "[");
    }
    pthread_mutex_unlock(&w->mu);
    if (!done) return problem(c, 504, "Gateway Timeout", "the event was not processed within wait=MS; it stays queued and will be processed", NULL, NULL);
    if (!body) return MHD_NO;
    enum MHD_Result ret = send_text(c, 200, "application/json", body, strlen(body));
    free(body);
    return ret;
}

static enum MHD_Result post_events(vigil_server *s, struct MHD_Connection *c, req *r) {
    if (r->fail_status) {
        if (r->fail_status == 503) return problem(c, 503, "Service Unavailable", "queues are full; retry later", NULL, "1");
        return problem(c, r->fail_status, "Request failed", NULL, NULL, NULL);
    }
    if (r->w) return answer_waiter(c, r);
    if (r->pub_wait) {   /* resumed: the stream answered */
        if (r->pub_status != 202) return problem(c, 503, "Service Unavailable", r->pub_detail, NULL, "1");
        atomic_fetch_add(&s->http_events, r->pub_events);
        char body[64];
        snprintf(body, sizeof body, "{\"accepted\":%zu}", r->pub_events);
        return send_text(c, 202, "application/json", body, strlen(body));
    }
    if (r->too_big) {
        char d[128];
        snprintf(d, sizeof d, "body larger than %zu bytes", s->cfg.max_body);
        return problem(c, 413, "Content Too Large", d, NULL, NULL);
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    int ndjson = ct && strstr(ct, "ndjson");
    const char *wait = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
    long wait_ms = -1;
    if (wait) {
        char *end;
        wait_ms = strtol(wait, &end, 10);
        if (*end || wait_ms < 0 || wait_ms > 60000)
            return problem(c, 400, "Bad Request", "wait must be milliseconds between 0 and 60000", NULL, NULL);
    }
    /* split: NDJSON lines, or the whole body as one event */
    size_t cap = 64, n = 0;
    vigil_event **evs = malloc(cap * sizeof *evs);
    if (!evs) return MHD_NO;
    const char *p = r->body ? r->body : "", *end = p + r->len;
    int line = 0;
    while (p < end || (n == 0 && line == 0)) {
        const char *nl = ndjson ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const char *le = nl ? nl : end;
        line++;
        const char *a = p, *b = le;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r' || b[-1] == '\n')) b--;
        p = nl ? nl + 1 : end;
        if (a == b) {
            if (!ndjson || p >= end) {
                if (n == 0) {
                    free(evs);
                    return problem(c, 400, "Bad Request", "empty body: expected a JSON event or NDJSON lines", NULL, NULL);
                }
                break;
            }
            continue;
        }
        vigil_event *ev;
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vigil_event_decode_json(s->rs, &s->cfg.ev.decode, a, (size_t)(b - a), NULL, 1, &ev, &err);
        if (st != VIGIL_OK) {
            for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
            free(evs);
            atomic_fetch_add(st == VIGIL_ENOKEY ? &s->rejected_nokey : &s->rejected_bad, 1);
            char d[700];
            snprintf(d, sizeof d, "line %d: %s; nothing of this batch was applied", line, err.msg);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "line", line);
            cJSON_AddStringToObject(x, "reason", err.msg);
            return problem(c, 400, "Bad Request", d, x, NULL);
        }
        if (n == cap) {
            cap *= 2;
            vigil_event **ne = realloc(evs, cap * sizeof *ne);
            if (!ne) {
                vigil_event_release(ev);
                for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
                free(evs);
                return MHD_NO;
            }
            evs = ne;
        }
        evs[n++] = ev;
        if (!ndjson) break;
    }
    if (wait_ms >= 0) {
        if (n != 1) {
            for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
            free(evs);
            return problem(c, 400, "Bad Request", "wait=MS takes exactly one event", NULL, NULL);
        }
        vwaiter *w = calloc(1, sizeof *w);
        if (!w) return MHD_NO;
        pthread_mutex_init(&w->mu, NULL);
        atomic_init(&w->refs, 1);
        for (int g = 0; g < vigil_ruleset_group_count(s->rs); g++) w->pending += vigil_event_key(evs[0], g, NULL) != NULL;
        w->conn = c;
        w->deadline_ms = vigil_now_ms() + wait_ms;
        r->w = w;
        MHD_suspend_connection(c);
        vigil_status st = vsrv_enqueue(s, evs, 1, w, 0);
        if (st != VIGIL_OK) {
            vigil_event_release(evs[0]);
            r->fail_status = (st == VIGIL_EFULL || st == VIGIL_EUNAVAILABLE) ? 503 : 413;
            w->conn = NULL;
            vwaiter_release(w);
            r->w = NULL;
            MHD_resume_connection(c);
        } else {
            atomic_fetch_add(&s->http_events, 1);
            vsrv_wait_register(s, w);
        }
        free(evs);
        return MHD_YES;
    }
    if (vsrv_paused(s)) {
        for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
        free(evs);
        atomic_fetch_add(&s->rejected_full, n);
        return problem(c, 503, "Service Unavailable",
                       "intake is paused: the state store or the event stream is unreachable; nothing of this batch "
                       "was applied; retry later", NULL, "1");
    }
    if (s->js) {
        /* durable path: the batch becomes one stream message, all or nothing;
         * the fetcher applies it like any other. NDJSON of the decoded
         * events, so that a pretty-printed single event stays one line. */
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            size_t jl;
            vigil_event_json(evs[i], &jl);
            total += jl + 1;
        }
        char *msg = malloc(total ? total : 1), *o = msg;
        for (size_t i = 0; msg && i < n; i++) {
            size_t jl;
            const char *js = vigil_event_json(evs[i], &jl);
            memcpy(o, js, jl);
            o += jl;
            *o++ = '\n';
        }
        for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
        free(evs);
        if (!msg) return MHD_NO;
        r->pub_wait = 1;
        r->pub_events = n;
        MHD_suspend_connection(c);
        vigil_status pst = vjs_publish_async(s, msg, total, c, &r->pub_status, r->pub_detail, sizeof r->pub_detail);
        free(msg);
        if (pst != VIGIL_OK) {
            r->pub_status = 503;
            snprintf(r->pub_detail, sizeof r->pub_detail, "too many batches waiting for the event stream; nothing "
                     "of this batch was applied; retry later");
            MHD_resume_connection(c);
        }
        return MHD_YES;
    }
    vigil_status st = vsrv_enqueue(s, evs, (int)n, NULL, 0);
    if (st != VIGIL_OK) {
        for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
        free(evs);
        atomic_fetch_add(&s->rejected_full, n);
        if (st == VIGIL_EFULL || st == VIGIL_EUNAVAILABLE) return problem(c, 503, "Service Unavailable", "queues are full; nothing of this batch was applied; retry later", NULL, "1");
        return problem(c, 413, "Content Too Large", "batch larger than a worker queue", NULL, NULL);
    }
    free(evs);
    atomic_fetch_add(&s->http_events, n);
    char body[64];
    snprintf(body, sizeof body, "{\"accepted\":%zu}", n);
    return send_text(c, 202, "application/json", body, strlen(body));
}

/* ---- POST /v1/rules:test -------------------------------------------------------------- */

#define RULES_TEST_MAX_EVENTS 10000

typedef struct dry { cJSON *alerts; int n; } dry;
static void dry_alert(void *ud, const vigil_alert *a) {
    dry *d = ud;
    char *js = vigil_alert_to_json(a, vigil_now_ms());
    cJSON *o = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (o) {
        cJSON_AddItemToArray(d->alerts, o);
        d->n++;
    }
}

/* A dry run: {"source": "<rule file text>", "events": [{…}, …]} → the
 * alerts those rules give on those events, in a private engine (no state,
 * no sinks touched). Compile errors: 422 with every error; a bad event: 400
 * naming its index. Events use the server's time and id fields. */
static enum MHD_Result rules_test(vigil_server *s, struct MHD_Connection *c, req *r) {
    if (r->too_big) return problem(c, 413, "Content Too Large", "body over the size limit", NULL, NULL);
    cJSON *in = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(in, "source");
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(in, "events");
    if (!cJSON_IsString(src) || !cJSON_IsArray(evs)) {
        cJSON_Delete(in);
        return problem(c, 400, "Bad Request", "expected {\"source\": \"<Lua rule text>\", \"events\": [{...}, ...]}", NULL, NULL);
    }
    if (cJSON_GetArraySize(evs) > RULES_TEST_MAX_EVENTS) {
        cJSON_Delete(in);
        return problem(c, 413, "Content Too Large", "at most 10000 events per dry run", NULL, NULL);
    }
    vigil_error errs[32];
    int nerrs = 0;
    vigil_ruleset *rs = NULL;
    vigil_status st = vigil_rules_load_string("test.lua", src->valuestring, strlen(src->valuestring), NULL, &rs, errs, 32, &nerrs);
    if (st != VIGIL_OK) {
        cJSON *x = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(x, "errors");
        for (int i = 0; i < nerrs; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "file", errs[i].file);
            cJSON_AddNumberToObject(e, "line", errs[i].line);
            cJSON_AddStringToObject(e, "rule", errs[i].rule);
            cJSON_AddStringToObject(e, "message", errs[i].msg);
            cJSON_AddItemToArray(a, e);
        }
        cJSON_Delete(in);
        return problem(c, 422, "Unprocessable Content", "the rule source did not compile", x, NULL);
    }
    dry d = {.alerts = cJSON_CreateArray()};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, dry_alert, &d);
    int idx = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, evs) {
        char *js = cJSON_PrintUnformatted(ev);
        char fid[32];
        snprintf(fid, sizeof fid, "event:%d", idx);
        vigil_event *e = NULL;
        vigil_error err;
        vigil_error_clear(&err);
        st = js ? vigil_event_decode_json(rs, &s->cfg.ev.decode, js, strlen(js), fid, 0, &e, &err) : VIGIL_ENOMEM;
        free(js);
        if (st != VIGIL_OK) {
            vigil_engine_destroy(eng);
            vigil_ruleset_release(rs);
            cJSON_Delete(d.alerts);
            cJSON_Delete(in);
            char det[700];
            snprintf(det, sizeof det, "events[%d]: %s", idx, err.msg);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "index", idx);
            return problem(c, 400, "Bad Request", det, x, NULL);
        }
        vigil_engine_feed(eng, e, &err);   /* an event with no key of these rules is skipped, as in serve */
        vigil_event_release(e);
        idx++;
    }
    vigil_engine_advance(eng, INT64_MAX);   /* close windows, fire absences */
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    cJSON_Delete(in);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "events", idx);
    cJSON_AddItemToObject(out, "alerts", d.alerts);
    return send_json(c, 200, out);
}

/* ---- rules, health, metrics ---------------------------------------------------------- */

static cJSON *rule_json(vigil_server *s, int i) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", vigil_ruleset_rule_name(s->rs, i));
    cJSON_AddNumberToObject(o, "version", vigil_ruleset_rule_version(s->rs, i));
    cJSON_AddStringToObject(o, "mode", vigil_mode_str(vigil_ruleset_rule_mode(s->rs, i)));
    cJSON_AddStringToObject(o, "severity", vigil_severity_str(vigil_ruleset_rule_severity(s->rs, i)));
    cJSON_AddStringToObject(o, "key", vigil_ruleset_rule_key(s->rs, i));
    cJSON_AddNumberToObject(o, "alerts", (double)atomic_load(&s->rule_alerts[i]));
    return o;
}

static enum MHD_Result get_rules(vigil_server *s, struct MHD_Connection *c, const char *name) {
    if (name) {
        int i = vigil_ruleset_rule_index(s->rs, name);
        if (i < 0) return problem(c, 404, "Not Found", "no such rule", NULL, NULL);
        return send_json(c, 200, rule_json(s, i));
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "rules");
    for (int i = 0; i < vigil_ruleset_rule_count(s->rs); i++) cJSON_AddItemToArray(a, rule_json(s, i));
    return send_json(c, 200, o);
}

static enum MHD_Result readyz(vigil_server *s, struct MHD_Connection *c) {
    cJSON *o = cJSON_CreateObject();
    int ok = 1;
    cJSON_AddStringToObject(o, "rules", "loaded");
    if (s->cfg.redis_url) {
        vigil_error err;
        int up = vigil_redis_ping(s->cfg.redis_url, &err) == VIGIL_OK;
        cJSON_AddStringToObject(o, "redis", up ? "up" : "down");
        ok &= up;
    }
    if (s->cfg.nats_url) {
        int up = s->nc && natsConnection_Status(s->nc) == NATS_CONN_STATUS_CONNECTED;
        cJSON_AddStringToObject(o, "nats", up ? "up" : "down");
        if (s->js) cJSON_AddStringToObject(o, "jetstream", up ? "up" : "down");
        ok &= up;
    }
    int paused = vsrv_paused(s);
    cJSON_AddStringToObject(o, "intake", paused ? "paused" : "open");
    ok &= !paused;
    cJSON_AddStringToObject(o, "status", ok ? "ready" : "not ready");
    return send_json(c, ok ? 200 : 503, o);
}

typedef struct sbuf { char *p; size_t len, cap; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return;
        b->p = np;
        b->cap = cap;
    }
}

static void sb_emit(void *ud, const char *text, size_t len) { sb_printf(ud, "%.*s", (int)len, text); }

/* GET /v1/deadletters?endpoint=&limit= : alerts a webhook endpoint gave up on. */
static enum MHD_Result dead_letters(vigil_server *s, struct MHD_Connection *c) {
    if (!s->dispatch) return send_text(c, 200, "application/json", "[]", 2);
    const char *ep = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "endpoint");
    const char *ls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 100;
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (*end || limit < 1 || limit > 10000)
            return problem(c, 400, "Bad Request", "limit must be between 1 and 10000", NULL, NULL);
    }
    char *json = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_dispatch_dead_letters(s->dispatch, ep && *ep ? ep : NULL, (int)limit, &json, &err);
    if (st == VIGIL_ENOTFOUND || st == VIGIL_EINVAL) return problem(c, 404, "Not Found", err.msg, NULL, NULL);
    if (st != VIGIL_OK) return problem(c, 503, "Service Unavailable", err.msg, NULL, "1");
    enum MHD_Result r = send_text(c, 200, "application/json", json, strlen(json));
    free(json);
    return r;
}

static enum MHD_Result metrics(vigil_server *s, struct MHD_Connection *c) {
    sbuf b = {0};
    unsigned long long processed = 0, late = 0, keys = 0, runs = 0, depth = 0, commits = 0, cerr = 0, expired = 0,
                       evicted = 0, fnerr = 0, skipped = 0, snaps = 0, cus = 0, ccount = 0;
    int down = 0;
    for (int i = 0; i < s->nworkers; i++) {
        vworker *w = &s->workers[i];
        skipped += atomic_load(&w->skipped);
        snaps += atomic_load(&w->snapshots);
        cus += atomic_load(&w->commit_us_sum);
        ccount += atomic_load(&w->commit_count);
        down |= atomic_load(&w->store_down);
        processed += atomic_load(&w->processed);
        late += atomic_load(&w->late);
        keys += atomic_load(&w->keys);
        runs += atomic_load(&w->runs);
        expired += atomic_load(&w->keys_expired);
        evicted += atomic_load(&w->runs_evicted);
        fnerr += atomic_load(&w->function_errors);
        commits += atomic_load(&w->commits);
        cerr += atomic_load(&w->commit_errors);
        pthread_mutex_lock(&w->q.mu);
        depth += w->q.n;
        pthread_mutex_unlock(&w->q.mu);
    }
    sb_printf(&b, "# HELP vigil_events_received_total Events accepted from a source.\n# TYPE vigil_events_received_total counter\n");
    sb_printf(&b, "vigil_events_received_total{source=\"http\"} %llu\n", (unsigned long long)atomic_load(&s->http_events));
    sb_printf(&b, "vigil_events_received_total{source=\"nats\"} %llu\n", (unsigned long long)atomic_load(&s->nats_events));
    sb_printf(&b, "# HELP vigil_events_rejected_total Events refused, by reason.\n# TYPE vigil_events_rejected_total counter\n");
    sb_printf(&b, "vigil_events_rejected_total{reason=\"malformed\"} %llu\n", (unsigned long long)atomic_load(&s->rejected_bad));
    sb_printf(&b, "vigil_events_rejected_total{reason=\"no_key\"} %llu\n", (unsigned long long)atomic_load(&s->rejected_nokey));
    sb_printf(&b, "vigil_events_rejected_total{reason=\"queue_full\"} %llu\n", (unsigned long long)atomic_load(&s->rejected_full));
    sb_printf(&b, "# HELP vigil_events_processed_total Event deliveries to key groups processed by workers.\n# TYPE vigil_events_processed_total counter\n");
    sb_printf(&b, "vigil_events_processed_total %llu\n", processed);
    sb_printf(&b, "# HELP vigil_events_late_total Events older than watermark minus allowed lateness.\n# TYPE vigil_events_late_total counter\n");
    sb_printf(&b, "vigil_events_late_total %llu\n", late);
    sb_printf(&b, "# HELP vigil_queue_depth Items waiting in worker queues.\n# TYPE vigil_queue_depth gauge\nvigil_queue_depth %llu\n", depth);
    sb_printf(&b, "# HELP vigil_state_keys Keys with state in worker memory.\n# TYPE vigil_state_keys gauge\nvigil_state_keys %llu\n", keys);
    sb_printf(&b, "# HELP vigil_state_keys_expired_total Idle keys whose state was dropped.\n# TYPE vigil_state_keys_expired_total counter\nvigil_state_keys_expired_total %llu\n", expired);
    sb_printf(&b, "# HELP vigil_runs_evicted_total Partial matches evicted by max_runs.\n# TYPE vigil_runs_evicted_total counter\nvigil_runs_evicted_total %llu\n", evicted);
    sb_printf(&b, "# HELP vigil_function_errors_total Calls of Lua function predicates or alert functions that failed (error or budget): false, or the built-in details.\n# TYPE vigil_function_errors_total counter\nvigil_function_errors_total %llu\n", fnerr);
    sb_printf(&b, "# HELP vigil_late_published_total Late events published to vigil.late.<key field>.\n# TYPE vigil_late_published_total counter\nvigil_late_published_total %llu\n",
              (unsigned long long)atomic_load(&s->nats_late_published));
    sb_printf(&b, "# HELP vigil_partial_matches Live pattern runs.\n# TYPE vigil_partial_matches gauge\nvigil_partial_matches %llu\n", runs);
    sb_printf(&b, "# HELP vigil_state_commits_total Batches committed to the state store.\n# TYPE vigil_state_commits_total counter\nvigil_state_commits_total %llu\n", commits);
    sb_printf(&b, "# HELP vigil_state_errors_total Failed state loads or commits (retried).\n# TYPE vigil_state_errors_total counter\nvigil_state_errors_total %llu\n", cerr);
    sb_printf(&b, "# HELP vigil_commit_seconds Time spent committing batches (state, offsets, alerts).\n# TYPE vigil_commit_seconds summary\n"
                  "vigil_commit_seconds_sum %.6f\nvigil_commit_seconds_count %llu\n", (double)cus / 1e6, ccount);
    sb_printf(&b, "# HELP vigil_events_skipped_total Redelivered events at or below their pair's committed offset (already applied).\n"
                  "# TYPE vigil_events_skipped_total counter\nvigil_events_skipped_total %llu\n", skipped);
    if (s->cfg.redis_url) {
        unsigned long long rt = 0, ld = 0, sv = 0;
        for (int i = 0; i < s->nworkers; i++) {
            vigil_redis_stats rst;
            /* counters of another thread's store: read racily, monotonic */
            if (s->workers[i].store && vigil_redis_store_stats(s->workers[i].store, &rst) == VIGIL_OK) {
                rt += rst.round_trips;
                ld += rst.keys_loaded;
                sv += rst.keys_saved;
            }
        }
        sb_printf(&b, "# HELP vigil_redis_round_trips_total Round trips to Redis for state (loads and commits).\n# TYPE vigil_redis_round_trips_total counter\nvigil_redis_round_trips_total %llu\n", rt);
        sb_printf(&b, "# HELP vigil_redis_keys_total Key states loaded from and saved to Redis.\n# TYPE vigil_redis_keys_total counter\n"
                      "vigil_redis_keys_total{op=\"load\"} %llu\nvigil_redis_keys_total{op=\"save\"} %llu\n", ld, sv);
    }
    sb_printf(&b, "# HELP vigil_snapshots_total Memory-store snapshots written.\n# TYPE vigil_snapshots_total counter\nvigil_snapshots_total %llu\n", snaps);
    sb_printf(&b, "# HELP vigil_store_up Whether the last state load or commit succeeded.\n# TYPE vigil_store_up gauge\nvigil_store_up %d\n", !down);
    sb_printf(&b, "# HELP vigil_intake_paused Whether intake is paused (a store or the event stream unreachable).\n# TYPE vigil_intake_paused gauge\nvigil_intake_paused %d\n", vsrv_paused(s));
    if (s->js) {
        sb_printf(&b, "# HELP vigil_jetstream_messages_total JetStream messages fetched and acked.\n# TYPE vigil_jetstream_messages_total counter\n");
        sb_printf(&b, "vigil_jetstream_messages_total{outcome=\"fetched\"} %llu\n", (unsigned long long)atomic_load(&s->js_fetched));
        sb_printf(&b, "vigil_jetstream_messages_total{outcome=\"acked\"} %llu\n", (unsigned long long)atomic_load(&s->js_acked));
        sb_printf(&b, "vigil_jetstream_messages_total{outcome=\"with_bad_lines\"} %llu\n", (unsigned long long)atomic_load(&s->js_msgs_bad));
        sb_printf(&b, "# HELP vigil_jetstream_fetch_errors_total Failed fetches (retried).\n# TYPE vigil_jetstream_fetch_errors_total counter\nvigil_jetstream_fetch_errors_total %llu\n",
                  (unsigned long long)atomic_load(&s->js_fetch_errors));
        sb_printf(&b, "# HELP vigil_jetstream_lag Messages fetched and not yet acked.\n# TYPE vigil_jetstream_lag gauge\nvigil_jetstream_lag %llu\n",
                  (unsigned long long)(atomic_load(&s->js_fetched) - atomic_load(&s->js_acked)));
    }
    sb_printf(&b, "# HELP vigil_alerts_total Alerts produced, by rule and mode.\n# TYPE vigil_alerts_total counter\n");
    for (int i = 0; i < vigil_ruleset_rule_count(s->rs); i++)
        sb_printf(&b, "vigil_alerts_total{rule=\"%s\",mode=\"%s\"} %llu\n", vigil_ruleset_rule_name(s->rs, i),
                  vigil_mode_str(vigil_ruleset_rule_mode(s->rs, i)), (unsigned long long)atomic_load(&s->rule_alerts[i]));
    vigil_hub_counters hc;
    if (vigil_hub_stats(s->hub, &hc) == VIGIL_OK)
        sb_printf(&b, "# HELP vigil_sse_subscribers Open alert streams.\n# TYPE vigil_sse_subscribers gauge\nvigil_sse_subscribers %zu\n", hc.subscribers);
    vigil_webhooks_metrics(s->dispatch, s->outbox, sb_emit, &b);
    sb_printf(&b, "# HELP vigil_nats_published_total Alerts published to NATS.\n# TYPE vigil_nats_published_total counter\nvigil_nats_published_total %llu\n",
              (unsigned long long)atomic_load(&s->nats_published));
    sb_printf(&b, "# HELP vigil_uptime_seconds Seconds since start.\n# TYPE vigil_uptime_seconds gauge\nvigil_uptime_seconds %.3f\n",
              (double)(vigil_now_ms() - s->started_ms) / 1000.0);
    enum MHD_Result r = send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.len);
    free(b.p);
    return r;
}

/* ---- routing -------------------------------------------------------------------------- */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    vigil_server *s = cls;
    req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    int is_post = strcmp(method, "POST") == 0, is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (is_post && *upload_size) {
        if (!r->too_big) {
            if (r->len + *upload_size > s->cfg.max_body) {
                r->too_big = 1;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
            } else {
                if (r->len + *upload_size + 1 > r->cap) {
                    size_t cap = r->cap ? r->cap * 2 : 4096;
                    while (cap < r->len + *upload_size + 1) cap *= 2;
                    char *nb = realloc(r->body, cap);
                    if (!nb) return MHD_NO;
                    r->body = nb;
                    r->cap = cap;
                }
                memcpy(r->body + r->len, upload, *upload_size);
                r->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/v1/events") == 0) {
        if (!is_post) return problem(c, 405, "Method Not Allowed", "use POST", NULL, NULL);
        return post_events(s, c, r);
    }
    if (strcmp(url, "/v1/rules:test") == 0) {
        if (!is_post) return problem(c, 405, "Method Not Allowed", "use POST", NULL, NULL);
        return rules_test(s, c, r);
    }
    if (!is_get) return problem(c, 405, "Method Not Allowed", "this resource supports GET only", NULL, NULL);
    if (strcmp(url, "/v1/alerts") == 0) return vigil_hub_handle_list(s->hub, c);
    if (strcmp(url, "/v1/alerts/stream") == 0) return vigil_hub_handle_stream(s->hub, c);
    if (strcmp(url, "/v1/rules") == 0) return get_rules(s, c, NULL);
    if (strncmp(url, "/v1/rules/", 10) == 0) return get_rules(s, c, url + 10);
    if (strcmp(url, "/metrics") == 0) return metrics(s, c);
    if (strcmp(url, "/v1/deadletters") == 0) return dead_letters(s, c);
    if (strcmp(url, "/healthz") == 0) return send_text(c, 200, "application/json", "{\"status\":\"ok\"}", 15);
    if (strcmp(url, "/readyz") == 0) return readyz(s, c);
    if (strncmp(url, "/v1/", 4) == 0) return problem(c, 404, "Not Found", "no such API resource", NULL, NULL);
    return vigil_hub_handle_asset(c, url);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    req *r = *con_cls;
    if (!r) return;
    if (r->w) {
        pthread_mutex_lock(&r->w->mu);
        r->w->conn = NULL;   /* never resume a connection that is gone */
        pthread_mutex_unlock(&r->w->mu);
        vwaiter_release(r->w);
    }
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static int loopback(const char *host) {
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0;
}

vigil_status vhttp_start(vigil_server *s, vigil_error *err) {
    char host[256];
    const char *colon = strrchr(s->cfg.listen, ':');
    if (!colon || (size_t)(colon - s->cfg.listen) >= sizeof host)
        return vigil_error_set(err, VIGIL_EINVAL, "--listen '%s': expected HOST:PORT", s->cfg.listen);
    memcpy(host, s->cfg.listen, (size_t)(colon - s->cfg.listen));
    host[colon - s->cfg.listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return vigil_error_set(err, VIGIL_EINVAL, "--listen '%s': bad port", s->cfg.listen);
    if (!loopback(host))
        return vigil_error_set(err, VIGIL_EINVAL,
                               "--listen '%s': with no API tokens configured vigil listens on loopback only", s->cfg.listen);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sa.sin_addr) != 1)
        return vigil_error_set(err, VIGIL_EINVAL, "--listen '%s': bad IPv4 address", s->cfg.listen);
    s->httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_ALLOW_SUSPEND_RESUME |
                                    MHD_USE_ERROR_LOG,
                                (uint16_t)port, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &sa,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_THREAD_POOL_SIZE, 2,
                                MHD_OPTION_CONNECTION_LIMIT, 1000, MHD_OPTION_END);
    if (!s->httpd) return vigil_error_set(err, VIGIL_EIO, "cannot listen on %s (in use?)", s->cfg.listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->httpd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : (int)port;
    return VIGIL_OK;
}

void vhttp_stop(vigil_server *s) {
    if (!s->httpd) return;
    vigil_hub_close(s->hub);
    MHD_stop_daemon(s->httpd);
    s->httpd = NULL;
}
