/* hub_list.c — GET /v1/alerts: the recent alerts of the hub's ring,
 * filtered (rule, key, since, limit) and paged by sequence number, and the
 * HTTP helpers the hub's handlers share (problem documents, arguments).
 * The ring itself and the SSE streams are in hub.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "vigil/event.h"   /* vigil_time_parse_rfc3339 */
#include "hub_int.h"

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

/* ---- GET /v1/alerts ------------------------------------------------------- */

enum MHD_Result vigil_hub_handle_list(vigil_hub *hub, struct MHD_Connection *conn)
{
    const char *rule = vhub_arg(conn, "rule");
    const char *key = vhub_arg(conn, "key");
    const char *since_s = vhub_arg(conn, "since");
    const char *limit_s = vhub_arg(conn, "limit");
    int64_t since = INT64_MIN;
    long limit = VIGIL_HUB_LIST_DEFAULT;

    if (since_s && !parse_since(since_s, &since))
        return vhub_problem(conn, MHD_HTTP_BAD_REQUEST, "Bad 'since'",
                       "expected an RFC 3339 time (2018-04-01T00:00:00Z) or "
                       "milliseconds since the epoch");
    if (limit_s) {
        uint64_t v;
        if (!vhub_parse_u64(limit_s, &v) || v == 0)
            return vhub_problem(conn, MHD_HTTP_BAD_REQUEST, "Bad 'limit'",
                           "expected an integer from 1 to 1000");
        limit = v > VIGIL_HUB_LIST_MAX ? VIGIL_HUB_LIST_MAX : (long)v;
    }

    /* Worst case: limit alerts at the size cap, plus punctuation. */
    struct buf b = {0};
    b.max = (size_t)limit * (VIGIL_HUB_MAX_ALERT_BYTES + 1) + 64;
    bool ok = buf_put(&b, "{\"alerts\":[", 11);
    char tail[48];
    int tl = 0;

    pthread_mutex_lock(&hub->mu);
    long n = 0;
    if (hub->ring && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        for (uint64_t seq = hub->last_seq; ok && seq >= lo && n < limit; seq--) {
            const struct slot *s = slot_of(hub, seq);
            if (rule && strcmp(rule, s->rule) != 0)
                continue;
            if (key && strcmp(key, s->key) != 0)
                continue;
            if (s->ts < since)
                continue;
            if (n > 0)
                ok = buf_put(&b, ",", 1);
            ok = ok && buf_put(&b, s->json, s->json_len);
            n++;
        }
    }
    tl = snprintf(tail, sizeof tail, "],\"last_seq\":%" PRIu64 "}", hub->last_seq);
    pthread_mutex_unlock(&hub->mu);
    ok = ok && tl > 0 && buf_put(&b, tail, (size_t)tl);

    if (!ok) {
        free(b.p);
        return vhub_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory", NULL);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(b.len, b.p, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(b.p);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
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

