/* control.c — the running rule set as the API shows it (DESIGN.md §6):
 * GET /v1/rules and /v1/rules/{name} (versions, modes, per-rule alert
 * counts), and POST /v1/rules:test, a dry run in a private engine. Rule hot
 * reload (versions, swaps at batch boundaries) lands here next. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "control.h"
#include "server/http/reply.h"
#include "vigil/clock.h"
#include "vigil/rules.h"

struct vigil_control {
    vigil_control_config cfg;
};

vigil_status vigil_control_create(const vigil_control_config *cfg, vigil_control **out) {
    vigil_control *c = calloc(1, sizeof *c);
    if (!c) return VIGIL_ENOMEM;
    c->cfg = *cfg;
    vigil_ruleset_retain(cfg->rs);
    *out = c;
    return VIGIL_OK;
}

void vigil_control_destroy(vigil_control *c) {
    if (!c) return;
    vigil_ruleset_release(c->cfg.rs);
    free(c);
}

/* ---- POST /v1/rules:test ---------------------------------------------------------- */

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
static enum MHD_Result rules_test(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_control *s = ctx;
    if (r->too_big) return vigil_http_problem(c, 413, "Content Too Large", "body over the size limit", NULL, NULL);
    cJSON *in = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(in, "source");
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(in, "events");
    if (!cJSON_IsString(src) || !cJSON_IsArray(evs)) {
        cJSON_Delete(in);
        return vigil_http_problem(c, 400, "Bad Request", "expected {\"source\": \"<Lua rule text>\", \"events\": [{...}, ...]}", NULL, NULL);
    }
    if (cJSON_GetArraySize(evs) > RULES_TEST_MAX_EVENTS) {
        cJSON_Delete(in);
        return vigil_http_problem(c, 413, "Content Too Large", "at most 10000 events per dry run", NULL, NULL);
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
        return vigil_http_problem(c, 422, "Unprocessable Content", "the rule source did not compile", x, NULL);
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
        st = js ? vigil_event_decode_json(rs, s->cfg.decode, js, strlen(js), fid, 0, &e, &err) : VIGIL_ENOMEM;
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
            return vigil_http_problem(c, 400, "Bad Request", det, x, NULL);
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
    return vigil_http_send_json(c, 200, out);
}


/* ---- GET /v1/rules ------------------------------------------------------------------ */

static cJSON *rule_json(vigil_control *s, int i) {
    const vigil_ruleset *rs = s->cfg.rs;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", vigil_ruleset_rule_name(rs, i));
    cJSON_AddNumberToObject(o, "version", vigil_ruleset_rule_version(rs, i));
    cJSON_AddStringToObject(o, "mode", vigil_mode_str(vigil_ruleset_rule_mode(rs, i)));
    cJSON_AddStringToObject(o, "severity", vigil_severity_str(vigil_ruleset_rule_severity(rs, i)));
    cJSON_AddStringToObject(o, "key", vigil_ruleset_rule_key(rs, i));
    cJSON_AddNumberToObject(o, "alerts", (double)vigil_sinks_rule_alerts(s->cfg.sinks, i));
    return o;
}

static enum MHD_Result get_rules(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_control *s = ctx;
    const char *name = strncmp(url, "/v1/rules/", 10) == 0 ? url + 10 : NULL;
    if (name) {
        int i = vigil_ruleset_rule_index(s->cfg.rs, name);
        if (i < 0) return vigil_http_problem(c, 404, "Not Found", "no such rule", NULL, NULL);
        return vigil_http_send_json(c, 200, rule_json(s, i));
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "rules");
    for (int i = 0; i < vigil_ruleset_rule_count(s->cfg.rs); i++) cJSON_AddItemToArray(a, rule_json(s, i));
    return vigil_http_send_json(c, 200, o);
}

void vigil_control_register(vigil_control *ctl, vigil_http *h) {
    vigil_http_route(h, "POST", "/v1/rules:test", 0, rules_test, ctl);
    vigil_http_route(h, "GET", "/v1/rules", 0, get_rules, ctl);
    vigil_http_route(h, "GET", "/v1/rules/", 1, get_rules, ctl);
}
