/* explain.c — GET /v1/keys/{field}/{value}: why did this key (not) alert?
 * (DESIGN.md §6). The key's worker reports its engine's state between two
 * batches (vigil_router_call, the key loaded from the store first); this
 * file renders it: per rule of the key group, the partial matches, the
 * window with its aggregates, `when` and its operands, the suppression and
 * the last alert (the newest the alert hub still holds, else its time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "control_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"

#define EXPLAIN_TIMEOUT_MS 5000

typedef struct xctx {
    vigil_control *c;
    const char *field, *key;
    size_t keylen;
    int g;
    cJSON *rules;            /* built on the worker's thread */
    vigil_status st;
    const vigil_ruleset *rs; /* the worker engine's, during the task */
} xctx;

static cJSON *value_json(const vigil_value *v) {
    switch (v->type) {
    case VIGIL_T_NUM: {   /* 15 significant digits: 61.48, not 61.480000000000011 */
        char t[40];
        snprintf(t, sizeof t, "%.15g", v->u.num);
        return cJSON_CreateNumber(strtod(t, NULL));
    }
    case VIGIL_T_BOOL: return cJSON_CreateBool(v->u.b);
    case VIGIL_T_STR: {
        char *s = strndup(v->u.str, v->len);
        cJSON *o = cJSON_CreateString(s ? s : "");
        free(s);
        return o;
    }
    default: return cJSON_CreateNull();   /* null, missing, undefined (an empty window) */
    }
}

static void add_time(cJSON *o, const char *k, int64_t ms) {
    if (ms == INT64_MIN || ms == INT64_MAX) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char t[40];
    vigil_time_format_rfc3339(ms, t, sizeof t);
    cJSON_AddStringToObject(o, k, t);
}

static void one_rule(void *ud, const vigil_explain_rule *e) {
    xctx *x = ud;
    const vigil_ruleset *rs = x->rs;
    cJSON *o = cJSON_CreateObject();
    const char *name = vigil_ruleset_rule_name(rs, e->rule);
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddNumberToObject(o, "version", vigil_ruleset_rule_version(rs, e->rule));
    cJSON_AddStringToObject(o, "mode", vigil_mode_str(vigil_ruleset_rule_mode(rs, e->rule)));
    if (vigil_ruleset_rule_draining(rs, e->rule)) cJSON_AddTrueToObject(o, "draining");
    if (vigil_ruleset_step_count(rs, e->rule) > 0) {
        cJSON *runs = cJSON_AddArrayToObject(o, "runs");
        for (int i = 0; i < e->nruns; i++) {
            const vigil_explain_run *r = &e->runs[i];
            cJSON *jr = cJSON_CreateObject();
            cJSON_AddStringToObject(jr, "step", r->step);
            cJSON *ev = cJSON_AddArrayToObject(jr, "events");
            for (int j = 0; j < r->nevents; j++) cJSON_AddItemToArray(ev, cJSON_CreateString(r->events[j]));
            add_time(jr, "started", r->started);
            add_time(jr, "expires", r->expires);
            if (r->completed) cJSON_AddTrueToObject(jr, "completed");
            cJSON_AddItemToArray(runs, jr);
        }
    } else if (e->has_window) {
        cJSON *w = cJSON_AddObjectToObject(o, "window");
        add_time(w, "start", e->start);
        add_time(w, "end", e->end);
        vigil_window_kind k = vigil_ruleset_rule_window(rs, e->rule);
        if (k != VIGIL_WIN_SLIDING) cJSON_AddBoolToObject(w, "open", e->open);
        cJSON_AddNumberToObject(w, "entries", (double)e->entries);
        cJSON *aggs = cJSON_AddObjectToObject(w, "aggregates");
        for (int i = 0; i < e->naggs; i++) cJSON_AddItemToObject(aggs, e->aggs[i].expr, value_json(&e->aggs[i].value));
        if (e->when < 0) {
            cJSON_AddNullToObject(w, "when");
            cJSON_AddStringToObject(w, "when_note", "`when` reads a field of the current event that this sliding "
                                                    "window does not keep (no aggregate reads it): it is decided at "
                                                    "the next event");
        } else {
            cJSON_AddBoolToObject(w, "when", e->when);
        }
        cJSON *ops = cJSON_AddArrayToObject(w, "operands");
        for (int i = 0; i < e->noperands; i++) {
            cJSON *op = cJSON_CreateObject();
            cJSON_AddStringToObject(op, "expr", e->operands[i].expr);
            cJSON_AddItemToObject(op, "value", value_json(&e->operands[i].value));
            cJSON_AddItemToArray(ops, op);
        }
    } else {
        cJSON_AddNullToObject(o, "window");
    }
    add_time(o, "suppressed_until", e->suppressed_until);
    char why[VCTL_SNOOZE_REASON] = "";
    int64_t snoozed = vctl_snoozed_until(x->c, name, x->key, why, sizeof why);
    add_time(o, "snoozed_until", snoozed);
    if (snoozed != INT64_MIN) cJSON_AddStringToObject(o, "snooze_reason", why);
    char *last = x->c->cfg.hub ? vigil_hub_last(x->c->cfg.hub, name, x->key) : NULL;
    cJSON *la = last ? cJSON_Parse(last) : NULL;
    free(last);
    if (la) {
        cJSON_AddItemToObject(o, "last_alert", la);
    } else if (e->last_alert != INT64_MIN) {   /* older than what the hub keeps: its time */
        cJSON *t = cJSON_AddObjectToObject(o, "last_alert");
        add_time(t, "ts", e->last_alert);
    } else {
        cJSON_AddNullToObject(o, "last_alert");
    }
    cJSON_AddItemToArray(x->rules, o);
}

static void on_worker(void *ud, vigil_engine *eng) {
    xctx *x = ud;
    x->rs = vigil_engine_ruleset(eng);
    vigil_error err;
    x->st = vigil_engine_explain_key(eng, x->g, x->key, x->keylen, one_rule, x, &err);
}

enum MHD_Result vctl_get_key(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    vigil_control *c = ctx;
    (void)r;
    const char *p = url + strlen("/v1/keys/");
    const char *slash = strchr(p, '/');
    if (!slash || slash == p || !slash[1])
        return vigil_http_problem(conn, 404, "Not Found", "expected /v1/keys/{field}/{value}", NULL, NULL);
    char field[256];
    if ((size_t)(slash - p) >= sizeof field)
        return vigil_http_problem(conn, 404, "Not Found", "no rule is keyed by that field", NULL, NULL);
    memcpy(field, p, (size_t)(slash - p));
    field[slash - p] = '\0';
    const char *key = slash + 1;
    vigil_ruleset *rs = vigil_control_ruleset(c);
    int g = -1;
    for (int i = 0; i < vigil_ruleset_group_count(rs) && g < 0; i++)
        if (strcmp(vigil_ruleset_group_key(rs, i), field) == 0 && vigil_ruleset_group_rule_count(rs, i) > 0) g = i;
    vigil_ruleset_release(rs);
    if (g < 0) {
        char d[400];
        snprintf(d, sizeof d, "no rule is keyed by '%.200s'", field);
        return vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
    }
    pthread_mutex_lock(&c->mu);
    vigil_router *router = c->router;
    pthread_mutex_unlock(&c->mu);
    if (!router) return vigil_http_problem(conn, 503, "Service Unavailable", "starting or stopping", NULL, "1");
    xctx x = {.c = c, .field = field, .key = key, .keylen = strlen(key), .g = g, .rules = cJSON_CreateArray()};
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_router_call(router, g, key, x.keylen, on_worker, &x, EXPLAIN_TIMEOUT_MS, &err);
    if (st == VIGIL_OK) st = x.st;
    if (st == VIGIL_ENOTFOUND) {
        cJSON_Delete(x.rules);
        char d[600];
        snprintf(d, sizeof d, "%.200s '%.300s' has no state: no event of it is in any rule's window or partial match",
                 field, key);
        return vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
    }
    if (st != VIGIL_OK) {
        cJSON_Delete(x.rules);
        return vigil_http_problem(conn, 503, "Service Unavailable", err.msg[0] ? err.msg : vigil_status_str(st), NULL, "1");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key_field", field);
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddItemToObject(o, "rules", x.rules);
    return vigil_http_send_json(conn, 200, o);
}
