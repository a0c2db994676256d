/* outbox_redis_dead.c — the Redis outbox's dead-letter stream (outbox.h,
 * outbox_redis_int.h).
 *
 * Why it exists: an alert that cannot be delivered to an endpoint (given up
 * after its retry horizon, not retryable, endpoint disabled, or malformed in
 * the outbox) must stay visible instead of vanishing with its ack. It goes
 * to the stream <prefix>:deadletter, capped at about 100000 entries, in one
 * MULTI/EXEC with the XACK that removes it from the endpoint's backlog, so
 * it is never both lost and acked. GET /v1/deadletters reads the newest ones
 * back (XREVRANGE) as the JSON objects outbox.h describes, the same shape
 * the file and memory outboxes give.
 *
 * Connections and commands are outbox_redis.c's (vrob_get, vrob_cmd). */
#define _GNU_SOURCE
#include "vigil/clock.h"
#include "outbox_redis_int.h"
#include "outbox_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEAD_MAXLEN "100000"
#define DEAD_SCAN_MAX 100000       /* list_dead looks at most this far back */

/* MULTI; XADD deadletter …; XACK; EXEC on k. */
vigil_status vrob_dead_on(call *k, const char *stream, const char *id, const char *ep, const vigil_alert_record *e,
                          const char *reason, int attempts, vigil_error *err) {
    rob *o = k->o;
    char att[16], ts[40];
    snprintf(att, sizeof att, "%d", attempts);
    vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
    if (!reason) reason = "";
    const char *json = e->json ? e->json : "null";
    size_t jlen = e->json ? e->len : 4;
    const char *xadd[] = {"XADD", o->dead, "MAXLEN", "~", DEAD_MAXLEN, "*", "endpoint", ep,
                          "alert_id", e->id, "rule", e->rule, "key", e->key, "reason", reason,
                          "attempts", att, "dead_at", ts, "alert", json};
    size_t xl[22];
    for (int i = 0; i < 22; i++) xl[i] = strlen(xadd[i]);
    xl[21] = jlen;
    const char *ack[] = {"XACK", stream, ep, id};
    size_t al[] = {4, strlen(stream), strlen(ep), strlen(id)};
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    size_t ml[] = {5}, el[] = {4};
    const vigil_redis_cmd cmds[4] = {{1, multi, ml}, {22, xadd, xl}, {4, ack, al}, {1, exec, el}};
    redisReply *rep[4];
    vigil_status s = vigil_redis_pipeline(k->r, cmds, 4, rep, "dead letter", err);
    if (s != VIGIL_OK) return s;
    for (int i = 0; i < 4; i++) {
        redisReply *r = rep[i];
        if (s == VIGIL_OK && (r->type == REDIS_REPLY_ERROR || (i == 3 && r->type != REDIS_REPLY_ARRAY)))
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: dead letter: %.*s", vigil_redis_where(k->r),
                                r->type == REDIS_REPLY_ERROR ? (int)r->len : 11,
                                r->type == REDIS_REPLY_ERROR ? r->str : "EXEC failed");
    }
    vigil_redis_free_replies(rep, 4);
    return s;
}

vigil_status vrob_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e, const char *reason,
                       int attempts, vigil_error *err) {
    rob *o = (rob *)ob;
    sid x;
    if (!o || !ep || !*ep || !e || sid_parse(e->ref, strlen(e->ref), &x) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox dead: bad argument");
    call k;
    vigil_status s = vrob_get(o, &k, err);
    if (s != VIGIL_OK) return s;
    s = vrob_dead_on(&k, o->stream, e->ref, ep, e, reason, attempts, err);
    vrob_put(&k);
    return s;
}

/* One dead-letter stream entry as the JSON object of outbox.h. */
static cJSON *dead_obj(const redisReply *fv) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    static const char *const str_fields[] = {"endpoint", "alert_id", "rule", "key", "reason", "dead_at"};
    for (size_t i = 0; i < sizeof str_fields / sizeof *str_fields; i++) {
        const redisReply *v = vrob_field(fv, str_fields[i]);
        char *t = v ? strndup(v->str, v->len) : NULL;
        cJSON_AddStringToObject(o, str_fields[i], t ? t : "");
        free(t);
    }
    const redisReply *at = vrob_field(fv, "attempts");
    cJSON_AddNumberToObject(o, "attempts", at ? strtol(at->str, NULL, 10) : 0);
    const redisReply *al = vrob_field(fv, "alert");
    cJSON *a = al ? cJSON_ParseWithLength(al->str, al->len) : NULL;
    if (!a && al) {
        char *t = strndup(al->str, al->len);
        a = cJSON_CreateString(t ? t : "");
        free(t);
    }
    cJSON_AddItemToObject(o, "alert", a ? a : cJSON_CreateNull());
    return o;
}

vigil_status vrob_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json, vigil_error *err) {
    rob *o = (rob *)ob;
    cJSON *arr = NULL;
    vigil_status s = voutbox_list_dead_begin(o, json, &limit, &arr, err);
    if (s != VIGIL_OK) return s;
    call k;
    s = vrob_get(o, &k, err);
    if (s != VIGIL_OK) {
        cJSON_Delete(arr);
        return s;
    }
    char end[48] = "+", cnt[16];
    int found = 0, scanned = 0;
    int page = ep ? 500 : limit;
    snprintf(cnt, sizeof cnt, "%d", page);
    while (s == VIGIL_OK && found < limit && scanned < DEAD_SCAN_MAX) {
        const char *av[] = {"XREVRANGE", o->dead, end, "-", "COUNT", cnt};
        size_t al[] = {9, strlen(o->dead), strlen(end), 1, 5, strlen(cnt)};
        redisReply *r;
        s = vrob_cmd(&k, &r, 0, 6, av, al, err);
        if (s != VIGIL_OK) break;
        size_t ne = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
        sid lastid = {0, 0};
        int have_last = 0;
        for (size_t i = 0; i < ne && found < limit; i++) {
            const redisReply *ent = r->element[i];
            if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2) continue;
            if (ent->element[0]->type == REDIS_REPLY_STRING &&
                sid_parse(ent->element[0]->str, ent->element[0]->len, &lastid) == 0)
                have_last = 1;
            scanned++;
            const redisReply *e = vrob_field(ent->element[1], "endpoint");
            if (ep && !(e && e->len == strlen(ep) && !memcmp(e->str, ep, e->len))) continue;
            cJSON *d = dead_obj(ent->element[1]);
            if (d) {
                cJSON_AddItemToArray(arr, d);
                found++;
            }
        }
        rfree(r);
        sid prev;
        if (ne < (size_t)page || !have_last || sid_prev(lastid, &prev) != 0) break;
        sid_fmt(prev, end, sizeof end);
    }
    vrob_put(&k);
    if (s != VIGIL_OK) {
        cJSON_Delete(arr);
        return s;
    }
    return voutbox_list_dead_end(arr, json, err);
}
