/* hub_list.c — GET /v1/alerts: the recent alerts of the hub's ring,
 * filtered (rule, severity, key, mode, time range, disposition), counted
 * (every match, not only the page) and paged by sequence number; GET
 * /v1/alerts/timeline (alerts per rule over time) and the per-rule activity
 * GET /v1/rules shows; GET /v1/alerts/evidence (an event's evidence as some
 * alert of the ring carried it: a window alert's window_events); and the
 * HTTP helpers the hub's handlers share (problem documents, arguments).
 * The ring itself and the SSE streams are in hub.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "vigil/clock.h"
#include "vigil/event.h"   /* vigil_time_parse_rfc3339 */
#include "hub_int.h"
#include "server/common/log.h"

/* ---- HTTP helpers --------------------------------------------------------- */

/* An RFC 9457 problem document. */
enum MHD_Result vhub_problem_h(struct MHD_Connection *conn, unsigned status,
                               const char *title, const char *detail, const char *retry)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "type", "about:blank") &&
        cJSON_AddStringToObject(o, "title", title) &&
        cJSON_AddNumberToObject(o, "status", status) &&
        (!detail || cJSON_AddStringToObject(o, "detail", detail)))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    static const char fallback[] = "{\"type\":\"about:blank\",\"title\":\"error\"}";
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY)
             : MHD_create_response_from_buffer(sizeof fallback - 1, (void *)fallback,
                                               MHD_RESPMEM_PERSISTENT);
    cJSON_free(text);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/problem+json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (retry)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
    if (vigil_log_request())
        MHD_add_response_header(resp, "X-Request-Id", vigil_log_request());
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result vhub_problem(struct MHD_Connection *conn, unsigned status,
                             const char *title, const char *detail)
{
    return vhub_problem_h(conn, status, title, detail, NULL);
}

enum MHD_Result vhub_problem_retry(struct MHD_Connection *conn, unsigned status,
                                   const char *title, const char *detail)
{
    return vhub_problem_h(conn, status, title, detail, "5");
}

/* Strict unsigned decimal: digits only, no sign, no overflow. */
bool vhub_parse_u64(const char *s, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

/* ms since the epoch (optionally negative digits) or RFC 3339 text. */
static bool parse_since(const char *s, int64_t *ms)
{
    const char *p = s;
    if (*p == '-')
        p++;
    bool digits = *p != '\0';
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            digits = false;
    if (digits) {
        errno = 0;
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0')
            return false;
        *ms = (int64_t)v;
        return true;
    }
    return vigil_time_parse_rfc3339(s, strlen(s), ms) == VIGIL_OK;
}

const char *vhub_arg(struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    return (v && *v) ? v : NULL;
}

/* A growable byte buffer with a hard cap. */
struct buf {
    char *p;
    size_t len, cap, max;
};

static bool buf_put(struct buf *b, const char *s, size_t n)
{
    if (n > b->max - b->len)
        return false;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n)
            nc *= 2;
        if (nc > b->max)
            nc = b->max;
        char *np = realloc(b->p, nc);
        if (!np)
            return false;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return true;
}

static enum MHD_Result send_buf(struct MHD_Connection *conn, struct buf *b, bool ok);

/* ---- GET /v1/alerts ------------------------------------------------------- */

typedef struct list_q {
    const char *rule, *severity, *key, *disposition;
    int mode;                    /* -1: any */
    int64_t since, until;
    uint64_t before;             /* 0: from the newest */
} list_q;

/* Whether slot s passes q; kind: its disposition ("" none), details its
 * triage JSON (malloc'd, or NULL) when want_details. Holds hub->mu. */
static bool passes(vigil_hub *hub, const struct slot *s, const list_q *q, char kind[16], char **details)
{
    kind[0] = '\0';
    if (details)
        *details = NULL;
    if (q->before && s->seq >= q->before)
        return false;
    if ((q->rule && strcmp(q->rule, s->rule) != 0) || (q->key && strcmp(q->key, s->key) != 0) ||
        (q->severity && strcmp(q->severity, s->severity) != 0))
        return false;
    if (q->mode >= 0 && s->mode != q->mode)
        return false;
    if (s->ts < q->since || s->ts >= q->until)
        return false;
    if (!q->disposition && !details)
        return true;
    char *d = hub->triage && s->id[0] ? hub->triage(hub->triage_ud, s->id, kind) : NULL;
    bool ok = !q->disposition || strcmp(q->disposition, kind[0] ? kind : "none") == 0;
    if (details && ok)
        *details = d;
    else
        free(d);
    return ok;
}

/* The alert's JSON with "seq", "disposition" and "triage" added. */
static bool put_listed(struct buf *b, const struct slot *s, const char *kind, const char *details)
{
    char head[64];
    if (s->json_len < 2 || s->json[s->json_len - 1] != '}')
        return buf_put(b, s->json, s->json_len);   /* not an object: as it came */
    bool empty = s->json_len == 2;
    int hl = snprintf(head, sizeof head, "%s\"seq\":%" PRIu64 ",\"disposition\":", empty ? "" : ",", s->seq);
    bool ok = buf_put(b, s->json, s->json_len - 1) && buf_put(b, head, (size_t)hl);
    if (kind[0]) {
        ok = ok && buf_put(b, "\"", 1) && buf_put(b, kind, strlen(kind)) && buf_put(b, "\"", 1);
        if (details)
            ok = ok && buf_put(b, ",\"triage\":", 10) && buf_put(b, details, strlen(details));
    } else {
        ok = ok && buf_put(b, "null", 4);
    }
    return ok && buf_put(b, "}", 1);
}

static enum MHD_Result bad_arg(struct MHD_Connection *conn, const char *title, const char *detail)
{
    return vhub_problem(conn, MHD_HTTP_BAD_REQUEST, title, detail);
}

enum MHD_Result vigil_hub_handle_list(vigil_hub *hub, struct MHD_Connection *conn)
{
    list_q q = {.rule = vhub_arg(conn, "rule"), .key = vhub_arg(conn, "key"),
                .severity = vhub_arg(conn, "severity"), .disposition = vhub_arg(conn, "disposition"),
                .mode = -1, .since = INT64_MIN, .until = INT64_MAX};
    const char *since_s = vhub_arg(conn, "since"), *until_s = vhub_arg(conn, "until");
    const char *limit_s = vhub_arg(conn, "limit"), *mode_s = vhub_arg(conn, "mode");
    const char *before_s = vhub_arg(conn, "before");
    long limit = VIGIL_HUB_LIST_DEFAULT;

    if (since_s && !parse_since(since_s, &q.since))
        return bad_arg(conn, "Bad 'since'", "expected an RFC 3339 time (2018-04-01T00:00:00Z) or "
                       "milliseconds since the epoch");
    if (until_s && !parse_since(until_s, &q.until))
        return bad_arg(conn, "Bad 'until'", "expected an RFC 3339 time (2018-04-01T00:00:00Z) or "
                       "milliseconds since the epoch");
    if (limit_s) {
        uint64_t v;
        if (!vhub_parse_u64(limit_s, &v) || v == 0)
            return bad_arg(conn, "Bad 'limit'", "expected an integer from 1 to 1000");
        limit = v > VIGIL_HUB_LIST_MAX ? VIGIL_HUB_LIST_MAX : (long)v;
    }
    if (before_s && (!vhub_parse_u64(before_s, &q.before) || q.before == 0))
        return bad_arg(conn, "Bad 'before'", "expected a sequence number (an alert's \"seq\", or \"next\" of "
                       "the previous page)");
    if (mode_s) {
        if (strcmp(mode_s, "active") != 0 && strcmp(mode_s, "shadow") != 0)
            return bad_arg(conn, "Bad 'mode'", "expected active or shadow");
        q.mode = strcmp(mode_s, "shadow") == 0;
    }
    if (q.severity && strcmp(q.severity, "info") != 0 && strcmp(q.severity, "low") != 0 &&
        strcmp(q.severity, "medium") != 0 && strcmp(q.severity, "high") != 0 && strcmp(q.severity, "critical") != 0)
        return bad_arg(conn, "Bad 'severity'", "expected info, low, medium, high or critical");
    if (q.disposition && strcmp(q.disposition, "confirmed") != 0 && strcmp(q.disposition, "false_positive") != 0 &&
        strcmp(q.disposition, "benign") != 0 && strcmp(q.disposition, "none") != 0)
        return bad_arg(conn, "Bad 'disposition'", "expected confirmed, false_positive, benign or none");

    /* Worst case: limit alerts at the size cap with their triage, plus punctuation. */
    struct buf b = {0};
    b.max = (size_t)limit * (VIGIL_HUB_MAX_ALERT_BYTES + 8192) + 128;
    bool ok = buf_put(&b, "{\"alerts\":[", 11);
    char tail[160];
    int tl = 0;

    pthread_mutex_lock(&hub->mu);
    long n = 0;
    uint64_t total = 0, next = 0, last_listed = 0;
    if (hub->ring && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        for (uint64_t seq = hub->last_seq; ok && seq >= lo && seq > 0; seq--) {
            const struct slot *s = slot_of(hub, seq);
            char kind[16];
            char *details = NULL;
            if (!passes(hub, s, &q, kind, n < limit ? &details : NULL))
                continue;
            total++;
            if (n >= limit)
                continue;
            if (n > 0)
                ok = buf_put(&b, ",", 1);
            ok = ok && put_listed(&b, s, kind, details);
            free(details);
            last_listed = s->seq;
            n++;
        }
    }
    if (total > (uint64_t)n)   /* more pages: the next one is older than the last listed */
        next = last_listed;
    char nx[24] = "null";
    if (next)
        snprintf(nx, sizeof nx, "%" PRIu64, next);
    tl = snprintf(tail, sizeof tail, "],\"total\":%" PRIu64 ",\"next\":%s,\"last_seq\":%" PRIu64 ",\"stored\":%zu}",
                  total, nx, hub->last_seq, hub->count);
    pthread_mutex_unlock(&hub->mu);
    ok = ok && tl > 0 && (size_t)tl < sizeof tail && buf_put(&b, tail, (size_t)tl);
    return send_buf(conn, &b, ok);
}

static enum MHD_Result send_buf(struct MHD_Connection *conn, struct buf *b, bool ok)
{
    if (!ok) {
        free(b->p);
        return vhub_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory", NULL);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b->p);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (vigil_log_request())
        MHD_add_response_header(resp, "X-Request-Id", vigil_log_request());
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- per rule over time ------------------------------------------------------ */

void vigil_hub_rule_activity(vigil_hub *hub, const char *rule, int64_t since_ms, uint64_t *n, int64_t *last_ms)
{
    *n = 0;
    *last_ms = INT64_MIN;
    pthread_mutex_lock(&hub->mu);
    if (hub->ring && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        for (uint64_t seq = hub->last_seq; seq >= lo && seq > 0; seq--) {
            const struct slot *s = slot_of(hub, seq);
            if (strcmp(rule, s->rule) != 0)
                continue;
            if (*last_ms == INT64_MIN)
                *last_ms = s->at_ms;
            if (s->at_ms >= since_ms)
                (*n)++;
        }
    }
    pthread_mutex_unlock(&hub->mu);
}

enum MHD_Result vigil_hub_handle_timeline(vigil_hub *hub, struct MHD_Connection *conn)
{
    const char *bs = vhub_arg(conn, "bucket"), *ns = vhub_arg(conn, "buckets");
    uint64_t bucket_s = 60, nb = 60;
    if (bs && (!vhub_parse_u64(bs, &bucket_s) || bucket_s < 1 || bucket_s > 86400))
        return bad_arg(conn, "Bad 'bucket'", "expected seconds per bucket, 1 to 86400");
    if (ns && (!vhub_parse_u64(ns, &nb) || nb < 1 || nb > 500))
        return bad_arg(conn, "Bad 'buckets'", "expected a number of buckets, 1 to 500");
    int64_t bms = (int64_t)bucket_s * 1000;
    int64_t end = (vigil_now_ms() / bms + 1) * bms, start = end - (int64_t)nb * bms;
    cJSON *o = cJSON_CreateObject(), *rules = cJSON_AddObjectToObject(o, "rules");
    cJSON_AddNumberToObject(o, "bucket_ms", (double)bms);
    cJSON_AddNumberToObject(o, "start", (double)start);
    cJSON_AddNumberToObject(o, "end", (double)end);
    int64_t oldest = INT64_MIN;
    bool ok = rules != NULL;
    pthread_mutex_lock(&hub->mu);
    if (ok && hub->ring && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        oldest = slot_of(hub, lo)->at_ms;
        for (uint64_t seq = hub->last_seq; ok && seq >= lo && seq > 0; seq--) {
            const struct slot *s = slot_of(hub, seq);
            if (s->at_ms < start || s->at_ms >= end)
                continue;
            cJSON *a = cJSON_GetObjectItemCaseSensitive(rules, s->rule);
            if (!a) {
                a = cJSON_AddArrayToObject(rules, s->rule);
                for (uint64_t i = 0; a && i < nb; i++)
                    cJSON_AddItemToArray(a, cJSON_CreateNumber(0));
                ok = a != NULL;
            }
            cJSON *cell = ok ? cJSON_GetArrayItem(a, (int)((s->at_ms - start) / bms)) : NULL;
            if (cell)
                cJSON_SetNumberValue(cell, cell->valuedouble + 1);
        }
    }
    pthread_mutex_unlock(&hub->mu);
    if (oldest == INT64_MIN)
        cJSON_AddNullToObject(o, "oldest");
    else
        cJSON_AddNumberToObject(o, "oldest", (double)oldest);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    struct buf b = {.p = text, .len = text ? strlen(text) : 0};
    return send_buf(conn, &b, text != NULL);
}

/* ---- GET /v1/alerts/evidence ----------------------------------------------- */

#define EVIDENCE_MAX_IDS 100

/* The evidence object of event `id` in alert JSON `a` (its index in
 * "events" within "evidence"), detached copy, or NULL. */
static cJSON *evidence_in(const cJSON *a, const char *id)
{
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(a, "events");
    const cJSON *evd = cJSON_GetObjectItemCaseSensitive(a, "evidence");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, evs) {
        if (cJSON_IsString(e) && strcmp(e->valuestring, id) == 0) {
            const cJSON *x = cJSON_GetArrayItem(evd, i);
            return x ? cJSON_Duplicate(x, true) : NULL;
        }
        i++;
    }
    return NULL;
}

enum MHD_Result vigil_hub_handle_evidence(vigil_hub *hub, struct MHD_Connection *conn)
{
    const char *ids_s = vhub_arg(conn, "ids");
    if (!ids_s || strlen(ids_s) > 64 * 1024)
        return bad_arg(conn, "Bad 'ids'", "expected ids=<event id>,<event id>,… (at most 100)");
    char *copy = strdup(ids_s);
    const char *ids[EVIDENCE_MAX_IDS];
    int n = 0;
    for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        if (n == EVIDENCE_MAX_IDS) {
            free(copy);
            return bad_arg(conn, "Bad 'ids'", "at most 100 event ids");
        }
        ids[n++] = t;
    }
    if (!copy || n == 0) {
        free(copy);
        return bad_arg(conn, "Bad 'ids'", "expected ids=<event id>,<event id>,… (at most 100)");
    }
    cJSON *o = cJSON_CreateObject(), *ev = cJSON_AddObjectToObject(o, "evidence");
    cJSON *found[EVIDENCE_MAX_IDS] = {0};
    int left = n;
    uint64_t searched = 0;
    pthread_mutex_lock(&hub->mu);
    if (hub->ring && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        for (uint64_t seq = hub->last_seq; left > 0 && seq >= lo && seq > 0; seq--) {
            const struct slot *s = slot_of(hub, seq);
            searched++;
            cJSON *a = NULL;
            for (int i = 0; i < n; i++) {
                if (found[i])
                    continue;
                /* cheap first: the id as a JSON string somewhere in the alert */
                size_t il = strlen(ids[i]);
                char *q = il + 2 <= s->json_len ? memchr(s->json, '"', s->json_len) : NULL;
                bool maybe = false;
                while (q && !maybe) {
                    size_t off = (size_t)(q - s->json);
                    maybe = off + il + 2 <= s->json_len && memcmp(q + 1, ids[i], il) == 0 && q[il + 1] == '"';
                    q = off + 1 < s->json_len ? memchr(q + 1, '"', s->json_len - off - 1) : NULL;
                }
                if (!maybe)
                    continue;
                if (!a && !(a = cJSON_ParseWithLength(s->json, s->json_len)))
                    break;
                if ((found[i] = evidence_in(a, ids[i])))
                    left--;
            }
            cJSON_Delete(a);
        }
    }
    pthread_mutex_unlock(&hub->mu);
    for (int i = 0; i < n; i++) {
        if (cJSON_GetObjectItemCaseSensitive(ev, ids[i])) {
            cJSON_Delete(found[i]);
            continue;
        }
        if (found[i])
            cJSON_AddItemToObject(ev, ids[i], found[i]);
        else
            cJSON_AddNullToObject(ev, ids[i]);
    }
    cJSON_AddNumberToObject(o, "searched", (double)searched);
    free(copy);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    struct buf b = {.p = text, .len = text ? strlen(text) : 0};
    return send_buf(conn, &b, text != NULL);
}

char *vigil_hub_last(vigil_hub *hub, const char *rule, const char *key) {
    char *out = NULL;
    pthread_mutex_lock(&hub->mu);
    if (hub->ring && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        for (uint64_t seq = hub->last_seq; seq >= lo && seq > 0; seq--) {
            const struct slot *s = slot_of(hub, seq);
            if (strcmp(rule, s->rule) != 0 || strcmp(key, s->key) != 0) continue;
            if ((out = malloc(s->json_len + 1))) {
                memcpy(out, s->json, s->json_len);
                out[s->json_len] = '\0';
            }
            break;
        }
    }
    pthread_mutex_unlock(&hub->mu);
    return out;
}

