/* outbox_util.c — the checks, positions, read deadline and dead-letter JSON
 * that the three outbox backends share (outbox_util.h).
 *
 * Why it exists: outbox_file.c, outbox_mem.c and outbox_redis_dead.c each
 * carried a copy of these (issue 10: one of everything); a fix to the
 * dead-letter shape or a position check now lands in all three at once. */
#define _GNU_SOURCE
#include "outbox_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/clock.h"

vigil_status voutbox_oom(vigil_error *err) { return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory"); }

vigil_status voutbox_unknown_ep(vigil_error *err, const char *ep) {
    return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
}

int voutbox_ep_index(char *const *names, int n, const char *ep) {
    for (int i = 0; ep && i < n; i++)
        if (!strcmp(names[i], ep)) return i;
    return -1;
}

int voutbox_lock_ep(pthread_mutex_t *mu, char *const *names, int n, const char *ep, vigil_error *err) {
    pthread_mutex_lock(mu);
    int i = voutbox_ep_index(names, n, ep);
    if (i < 0) {
        pthread_mutex_unlock(mu);
        voutbox_unknown_ep(err, ep);
    }
    return i;
}

vigil_status voutbox_depth(pthread_mutex_t *mu, char *const *names, int n_names, const uint64_t *counts,
                           const char *ep, uint64_t *n, vigil_error *err) {
    int i = voutbox_lock_ep(mu, names, n_names, ep, err);
    if (i < 0) return VIGIL_ENOTFOUND;
    *n = counts[i];
    pthread_mutex_unlock(mu);
    return VIGIL_OK;
}

int voutbox_parse_seq(const char *s, uint64_t *out) {
    uint64_t v = 0;
    for (const char *p = s; p && *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int voutbox_valid_id(const char *id, size_t max) {
    size_t n = id ? strnlen(id, max + 1) : 0;
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f) return 0;
    return 1;
}

vigil_status voutbox_check_endpoints(const char *const *endpoints, int n, int max_n, size_t max_name,
                                     vigil_error *err) {
    if (n < 0 || (n > 0 && !endpoints)) return vigil_error_set(err, VIGIL_EINVAL, "outbox: bad endpoint list");
    if (n > max_n) return vigil_error_set(err, VIGIL_EINVAL, "outbox: at most %d endpoints", max_n);
    for (int i = 0; i < n; i++) {
        if (!endpoints[i] || !*endpoints[i] || strlen(endpoints[i]) > max_name)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint name %d empty or over %zu bytes", i + 1,
                                   max_name);
        for (int k = 0; k < i; k++)
            if (!strcmp(endpoints[i], endpoints[k]))
                return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint '%s' named twice", endpoints[i]);
    }
    return VIGIL_OK;
}

vigil_status voutbox_check_alerts(const vigil_alert_record *alerts, int n, size_t id_max, size_t max_len,
                                  vigil_error *err) {
    if (n < 0 || (n > 0 && !alerts)) return vigil_error_set(err, VIGIL_EINVAL, "outbox append: bad argument");
    for (int i = 0; i < n; i++) {
        const vigil_alert_record *a = &alerts[i];
        if (!voutbox_valid_id(a->id, id_max))
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %d: id must be 1..%zu printable "
                                   "characters without spaces", i + 1, id_max);
        if (!a->json || a->len == 0)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %s: no JSON", a->id);
        if (a->len > max_len)
            return vigil_error_set(err, VIGIL_ETOOBIG, "outbox append: alert %s: %zu bytes (at most %zu)", a->id,
                                   a->len, max_len);
    }
    return VIGIL_OK;
}

vigil_status voutbox_parse_refs(const char *const *refs, int n, uint64_t *seqs, vigil_error *err) {
    if (n < 0 || (n > 0 && !refs)) return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad argument");
    for (int k = 0; k < n; k++) {
        uint64_t seq;
        if (!refs[k] || !*refs[k] || voutbox_parse_seq(refs[k], &seq) != 0)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad position '%s'", refs[k] ? refs[k] : "(null)");
        if (seqs) seqs[k] = seq;
    }
    return VIGIL_OK;
}

void voutbox_cond_init(pthread_cond_t *c) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

vigil_status voutbox_read(const voutbox_held *h, const char *ep, const char *after, vigil_alert_record *out, int max,
                          int *n, int wait_ms, vigil_error *err) {
    uint64_t from;
    if (n) *n = 0;
    if (!h || !h->self || !out || !n || max <= 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad argument");
    if (voutbox_parse_seq(after, &from) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad position '%s'", after);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (wait_ms > 0) {
        deadline.tv_sec += wait_ms / 1000;
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    int i = voutbox_lock_ep(h->mu, h->names, h->neps, ep, err);
    if (i < 0) return VIGIL_ENOTFOUND;
    vigil_status s = VIGIL_OK;
    int got;
    for (;;) {
        got = h->scan(h->self, i, from, out, max, &s, err);
        if (got || s != VIGIL_OK || wait_ms <= 0) break;
        if (pthread_cond_timedwait(h->appended, h->mu, &deadline) == ETIMEDOUT) wait_ms = 0;
    }
    pthread_mutex_unlock(h->mu);
    if (s != VIGIL_OK) {
        for (int k = 0; k < got; k++) vigil_alert_record_free(&out[k]);
        got = 0;
    }
    *n = got;
    return s;
}

char *voutbox_dead_line(const char *ep, const vigil_alert_record *e, const char *reason, int attempts,
                        size_t *len) {
    char ts[40];
    vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "endpoint", ep ? ep : "");
    cJSON_AddStringToObject(o, "alert_id", e->id);
    cJSON_AddStringToObject(o, "rule", e->rule);
    cJSON_AddStringToObject(o, "key", e->key);
    cJSON_AddStringToObject(o, "reason", reason ? reason : "");
    cJSON_AddNumberToObject(o, "attempts", attempts);
    cJSON_AddStringToObject(o, "dead_at", ts);
    cJSON *a = e->json ? cJSON_ParseWithLength(e->json, e->len) : NULL;
    if (!a) a = e->json ? cJSON_CreateString(e->json) : cJSON_CreateNull();
    cJSON_AddItemToObject(o, "alert", a);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return NULL;
    size_t n = strlen(txt);
    char *line = malloc(n + 2);   /* plain malloc'd, freed with free() */
    if (line) {
        memcpy(line, txt, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        *len = n + 1;
    }
    cJSON_free(txt);
    return line;
}

vigil_status voutbox_list_dead_begin(const void *ob, char **json, int *limit, cJSON **arr, vigil_error *err) {
    if (!ob || !json) return vigil_error_set(err, VIGIL_EINVAL, "outbox list_dead: bad argument");
    *json = NULL;
    if (*limit <= 0) *limit = VOUTBOX_DEAD_LIMIT_DEFAULT;
    if (*limit > VOUTBOX_DEAD_LIMIT_MAX) *limit = VOUTBOX_DEAD_LIMIT_MAX;
    if (arr && !(*arr = cJSON_CreateArray())) return voutbox_oom(err);
    return VIGIL_OK;
}

vigil_status voutbox_list_dead_end(cJSON *arr, char **json, vigil_error *err) {
    char *txt = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!txt) return voutbox_oom(err);
    *json = strdup(txt);
    cJSON_free(txt);
    return *json ? VIGIL_OK : voutbox_oom(err);
}
