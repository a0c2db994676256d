/* snooze.c — POST /v1/rules/{name}/snooze {"key","until","reason"}: no
 * alert of that (rule, key) until then, wall clock (DESIGN.md §6). An
 * analyst silences a known-good customer or a terminal under
 * investigation without touching the rule.
 *
 * The table is the control wing's; the workers ask it for every alert
 * (vigil_control_snoozed, through the router's alert filter) under a
 * read lock, so a snooze holds from the answer on. It is kept in the catalog
 * store as one record (the reserved name "~snoozes": no rule name has a
 * '~'), written in the same commit as its audit entry; expired snoozes are
 * dropped when the table next changes. At most VCTL_MAX_SNOOZES live ones;
 * a change builds a new table and swaps it in once stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "control_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"


static int64_t now_ms(void) { return vigil_now_ms(); }

int vigil_control_snoozed(void *ud, const char *rule, const char *key) {
    vigil_control *c = ud;
    int hit = 0;
    pthread_rwlock_rdlock(&c->snooze_lock);
    if (c->nsnoozes) {
        int64_t now = now_ms();
        for (int i = 0; i < c->nsnoozes && !hit; i++) {
            const vctl_snooze_t *s = &c->snoozes[i];
            hit = s->until > now && strcmp(s->rule, rule) == 0 && strcmp(s->key, key) == 0;
        }
    }
    pthread_rwlock_unlock(&c->snooze_lock);
    if (hit) atomic_fetch_add(&c->snoozed_alerts, 1);
    return hit;
}

int64_t vctl_snoozed_until(vigil_control *c, const char *rule, const char *key, char *reason, size_t n) {
    int64_t until = INT64_MIN, now = now_ms();
    pthread_rwlock_rdlock(&c->snooze_lock);
    for (int i = 0; i < c->nsnoozes; i++) {
        const vctl_snooze_t *s = &c->snoozes[i];
        if (s->until > now && strcmp(s->rule, rule) == 0 && strcmp(s->key, key) == 0) {
            until = s->until;
            if (reason) snprintf(reason, n, "%s", s->reason);
        }
    }
    pthread_rwlock_unlock(&c->snooze_lock);
    return until;
}

char *vctl_snoozes_table_json(const vctl_snooze_t *t, int n) {
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "snoozes");
    for (int i = 0; i < n; i++) {
        const vctl_snooze_t *s = &t[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "rule", s->rule);
        cJSON_AddStringToObject(x, "key", s->key);
        cJSON_AddNumberToObject(x, "until_ms", (double)s->until);
        cJSON_AddStringToObject(x, "reason", s->reason);
        cJSON_AddStringToObject(x, "by", s->by);
        cJSON_AddNumberToObject(x, "at_ms", (double)s->at);
        cJSON_AddItemToArray(a, x);
    }
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return out;
}

static void put_snooze(vctl_snooze_t *s, const char *rule, const char *key, int64_t until, const char *reason,
                       const char *by, int64_t at) {
    snprintf(s->rule, sizeof s->rule, "%s", rule);
    snprintf(s->key, sizeof s->key, "%s", key);
    snprintf(s->reason, sizeof s->reason, "%s", reason ? reason : "");
    snprintf(s->by, sizeof s->by, "%s", by ? by : "local");
    s->until = until;
    s->at = at;
}

/* Replace the table by the stored one (at start). */
void vctl_snoozes_load(vigil_control *c, const char *json) {
    cJSON *o = cJSON_Parse(json);
    const cJSON *x;
    int cap = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "snoozes"));
    vctl_snooze_t *t = malloc((size_t)(cap ? cap : 1) * sizeof *t);
    if (!t) {
        cJSON_Delete(o);
        return;
    }
    pthread_rwlock_wrlock(&c->snooze_lock);
    free(c->snoozes);
    c->snoozes = t;
    c->nsnoozes = 0;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(o, "snoozes")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "rule"), *k = cJSON_GetObjectItemCaseSensitive(x, "key"),
                    *u = cJSON_GetObjectItemCaseSensitive(x, "until_ms");
        if (!cJSON_IsString(r) || !cJSON_IsString(k) || !cJSON_IsNumber(u) || c->nsnoozes >= VCTL_MAX_SNOOZES) continue;
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(x, "reason"), *by = cJSON_GetObjectItemCaseSensitive(x, "by"),
                    *at = cJSON_GetObjectItemCaseSensitive(x, "at_ms");
        put_snooze(&c->snoozes[c->nsnoozes++], r->valuestring, k->valuestring, (int64_t)u->valuedouble,
                   cJSON_IsString(why) ? why->valuestring : "", cJSON_IsString(by) ? by->valuestring : "local",
                   cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0);
    }
    pthread_rwlock_unlock(&c->snooze_lock);
    cJSON_Delete(o);
}

/* POST /v1/rules/{name}/snooze. Holds mu (the caller took it). */
enum MHD_Result vctl_snooze(vigil_control *c, struct MHD_Connection *conn, const char *name, vigil_http_req *r) {
    cJSON *in = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(in, "key"), *u = cJSON_GetObjectItemCaseSensitive(in, "until"),
                *why = cJSON_GetObjectItemCaseSensitive(in, "reason");
    int64_t until = 0;
    const char *bad = NULL;
    if (!cJSON_IsObject(in)) bad = "expected {\"key\": \"…\", \"until\": \"<RFC 3339>\", \"reason\": \"…\"}";
    else if (!cJSON_IsString(k) || !k->valuestring[0] || strlen(k->valuestring) >= VCTL_SNOOZE_KEY)
        bad = "key must be the key's value as text, 1 to 255 bytes (numbers too: \"596\")";
    else if (!cJSON_IsString(u) || vigil_time_parse_rfc3339(u->valuestring, strlen(u->valuestring), &until) != VIGIL_OK)
        bad = "until must be an RFC 3339 time, e.g. \"2026-12-31T00:00:00Z\" (wall clock)";
    else if (until <= now_ms())
        bad = "until is in the past: nothing to snooze";
    else if (why && (!cJSON_IsString(why) || strlen(why->valuestring) >= VCTL_SNOOZE_REASON))
        bad = "reason must be a text of at most 255 bytes";
    if (bad) {
        cJSON_Delete(in);
        return vigil_http_problem(conn, 400, "Bad Request", bad, NULL, NULL);
    }
    if (!vcat_live(vcat_find(&c->cat, name))) {
        cJSON_Delete(in);
        char d[160];
        snprintf(d, sizeof d, "no rule '%s'", name);
        return vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
    }
    int64_t now = now_ms();
    const char *reason = cJSON_IsString(why) ? why->valuestring : "";
    /* the new table: the live snoozes of others, and this one (in place of one of the same
     * rule and key); it holds once stored */
    pthread_rwlock_rdlock(&c->snooze_lock);
    vctl_snooze_t *next = malloc((size_t)(c->nsnoozes + 1) * sizeof *next);
    int n = 0;
    for (int i = 0; next && i < c->nsnoozes; i++) {
        const vctl_snooze_t *s = &c->snoozes[i];
        if (s->until <= now || (strcmp(s->rule, name) == 0 && strcmp(s->key, k->valuestring) == 0)) continue;
        next[n++] = *s;
    }
    pthread_rwlock_unlock(&c->snooze_lock);
    if (!next || n >= VCTL_MAX_SNOOZES) {
        free(next);
        cJSON_Delete(in);
        return next ? vigil_http_problem(conn, 422, "Unprocessable Content", "too many live snoozes (10000)", NULL, NULL)
                    : MHD_NO;
    }
    put_snooze(&next[n++], name, k->valuestring, until, reason, r->who, now);
    char *table = vctl_snoozes_table_json(next, n);
    vctl_txn x;
    vctl_txn_init(&x, r->who);
    x.snoozes = table;
    char det[VCTL_SNOOZE_KEY + VCTL_SNOOZE_REASON + 80];
    snprintf(det, sizeof det, "key %s until %s%s%s", k->valuestring, u->valuestring, reason[0] ? ": " : "", reason);
    vctl_audit(&x, "snooze", name, 0, 0, det);
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = VIGIL_ENOMEM;
    if (table) st = vctl_commit(c, &x, &err);
    else vctl_abort(c, &x);
    free(table);
    if (st != VIGIL_OK) {   /* not stored: it does not hold either */
        free(next);
        cJSON_Delete(in);
        if (st == VIGIL_ECONFLICT) return vigil_http_problem(conn, 409, "Conflict", err.msg, NULL, "1");   /* cluster mode */
        return vigil_http_problem(conn, 503, "Service Unavailable", err.msg[0] ? err.msg : "out of memory", NULL, "1");
    }
    pthread_rwlock_wrlock(&c->snooze_lock);
    vctl_snooze_t *old = c->snoozes;
    c->snoozes = next;
    c->nsnoozes = n;
    pthread_rwlock_unlock(&c->snooze_lock);
    free(old);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rule", name);
    cJSON_AddStringToObject(o, "key", k->valuestring);
    cJSON_AddStringToObject(o, "until", u->valuestring);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "by", r->who);
    char t[40];
    vigil_time_format_rfc3339(now, t, sizeof t);
    cJSON_AddStringToObject(o, "at", t);
    cJSON_Delete(in);
    return vigil_http_send_json(conn, 200, o);
}
