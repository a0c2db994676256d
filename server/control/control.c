/* control.c — the control wing's life and its HTTP API (DESIGN.md §6):
 * GET /v1/rules[/name], PUT and DELETE /v1/rules/{name}, POST
 * /v1/rules/{name}/mode and /rollback, GET /v1/audit, and POST
 * /v1/rules:test, a dry run in a private engine. A change is applied by
 * apply.c (build, drain or inherit, store, swap at the workers' batch
 * boundaries); the rules directory by reload.c. Every change holds the
 * wing's mutex: one at a time, in the order they came. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "control_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"
#include "vigil/rules.h"
#include "server/common/log.h"

/* ---- life ------------------------------------------------------------------------------ */

void vctl_load_rule(void *ud, const char *name, const char *json) {
    vigil_control *c = ud;
    const char *why = NULL;
    if (strcmp(name, VCTL_SNOOZES_RECORD) == 0) {
        vctl_snoozes_load(c, json);
        return;
    }
    if (vctl_list_record(c, name, json)) return;
    if (vctl_compare_record(c, name, json)) return;
    if (vctl_triage_record(c, name, json)) return;
    if (vcat_rule_from_json(&c->cat, name, json, &why) != 0)
        vigil_log(VIGIL_LOG_WARN, "control", "the stored record of rule %s is unreadable (%s); skipped", name, why);
}

void vctl_load_file_hash(void *ud, const char *path, const char *hash) {
    vigil_control *c = ud;
    vcat_set_file_hash(&c->cat, path, hash);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

vigil_status vigil_control_create(const vigil_control_config *cfg, vigil_control **out, vigil_error *err) {
    vigil_control *c = calloc(1, sizeof *c);
    if (!c) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    c->cfg = *cfg;
    c->inotify_fd = -1;
    c->started_ms = vigil_now_ms();
    pthread_mutex_init(&c->mu, NULL);
    pthread_rwlock_init(&c->snooze_lock, NULL);
    pthread_rwlock_init(&c->triage_lock, NULL);
    pthread_mutex_init(&c->cmp_mu, NULL);
    vigil_status st = vctl_cluster_init(c, err);   /* cluster mode (issue 14) */
    if (st != VIGIL_OK) {
        vigil_control_destroy(c);
        return st;
    }
    /* in_list() files: <rules dir>/lists, as `vigil replay` finds them */
    snprintf(c->lists_dir, sizeof c->lists_dir, "%s/lists", cfg->rules);
    if (!is_dir(cfg->rules)) {
        char *slash = strrchr(c->lists_dir, '/');
        *slash = '\0';
        slash = strrchr(c->lists_dir, '/');
        snprintf(slash ? slash + 1 : c->lists_dir, sizeof c->lists_dir - (size_t)(slash ? slash + 1 - c->lists_dir : 0),
                 "lists");
    }
    if (!is_dir(c->lists_dir)) snprintf(c->lists_dir, sizeof c->lists_dir, "rules/lists");
    c->ropts.lists_dir = c->lists_dir;
    c->ropts.list_text = vctl_list_text;   /* a list sent to the API takes the place of its file */
    c->ropts.list_ud = c;
    vigil_catalog_store_config sc = {.redis_url = cfg->redis_url, .redis_prefix = cfg->redis_prefix,
                                     .data_dir = cfg->data_dir};
    for (;;) {   /* Redis not up yet (or loading): wait for it, as the workers do, rather than
                    start without the rules that ran before */
        st = vigil_catalog_store_open(&sc, &c->store, err);
        /* cluster mode: the generation before the records (a change in between is read again later) */
        if (st == VIGIL_OK && vctl_clustered(c)) st = vigil_catalog_store_generation(c->store, &c->gen, err);
        if (st == VIGIL_OK) st = vigil_catalog_store_load(c->store, vctl_load_rule, vctl_load_file_hash, c, err);
        if (st == VIGIL_OK) break;
        vigil_catalog_store_close(c->store);
        c->store = NULL;
        vcat_free(&c->cat);
        vctl_lists_free(c);
        vctl_compare_free(c);
        vctl_triage_free(c);
        if (st != VIGIL_EUNAVAILABLE && !(st == VIGIL_ESTORE && strstr(err->msg, "LOADING"))) {
            vigil_control_destroy(c);
            return st;
        }
        vigil_log(VIGIL_LOG_WARN, "control", "reading the rule catalog: %s; retrying", err->msg);
        usleep(500000);
    }
    /* the stored catalog first: what ran before the restart */
    vigil_error errs[4];
    int nerrs = 0;
    st = vcat_build(&c->cat, NULL, &c->ropts, &c->rs, errs, 4, &nerrs);
    if (st != VIGIL_OK) {
        if (nerrs) *err = errs[0];
        vigil_log(VIGIL_LOG_ERROR, "control", "the stored rule catalog cannot be built (%s); starting from the directory",
                nerrs ? errs[0].msg : vigil_status_str(st));
        vcat_free(&c->cat);
        vigil_ruleset_release(c->rs);
        c->rs = NULL;
        if ((st = vcat_build(&c->cat, NULL, &c->ropts, &c->rs, errs, 4, &nerrs)) != VIGIL_OK) {
            vigil_control_destroy(c);
            return vigil_error_set(err, st, "cannot build an empty ruleset");
        }
    }
    /* then the directory: files whose hash changed since; in cluster mode only while
       the shared catalog is empty (else it is the truth: SIGHUP or --watch pushes files) */
    int shared = vctl_cluster_shared(c);   /* it says so in the log */
    if (!shared && access(cfg->rules, F_OK) == 0) {
        vctl_reload_locked(c, "start");
        if (c->new_refused) {   /* a file that never ran does not compile: say so before serving */
            vigil_error_set(err, VIGIL_ECOMPILE, "%s", c->first_refusal);
            vigil_control_destroy(c);
            return VIGIL_ECOMPILE;
        }
    } else if (!shared) {
        vigil_log(VIGIL_LOG_WARN, "control", "rules directory %s does not exist: only the stored rules run (%d)", cfg->rules,
                vcat_live_count(&c->cat));
    }
    *out = c;
    return VIGIL_OK;
}

void vigil_control_set_sinks(vigil_control *c, vigil_sinks *sinks, vigil_hub *hub) {
    c->cfg.sinks = sinks;
    c->cfg.hub = hub;
    if (hub) vigil_hub_set_triage(hub, vctl_triage_lookup, c);   /* GET /v1/alerts shows dispositions */
}

vigil_ruleset *vigil_control_ruleset(vigil_control *c) {
    pthread_mutex_lock(&c->mu);
    vigil_ruleset *rs = c->rs;
    vigil_ruleset_retain(rs);
    pthread_mutex_unlock(&c->mu);
    return rs;
}

void vigil_control_start(vigil_control *c, vigil_router *router, vigil_control_sync_fn sync, void *sync_ud) {
    pthread_mutex_lock(&c->mu);
    c->router = router;
    c->sync = sync;
    c->sync_ud = sync_ud;
    pthread_mutex_unlock(&c->mu);
    if (pthread_create(&c->maint_th, NULL, vctl_maint_main, c) == 0) c->maint_started = 1;
    if (c->cfg.watch) {
        if ((c->inotify_fd = vctl_watch_open(c)) < 0)
            vigil_log(VIGIL_LOG_WARN, "control", "--watch: inotify is not available here; reload with SIGHUP");
        else if (pthread_create(&c->watch_th, NULL, vctl_watch_main, c) == 0)
            c->watch_started = 1;
    }
}

void vigil_control_stop(vigil_control *c) {
    if (!c) return;
    atomic_store(&c->stopping, 1);
    vctl_cluster_stop(c);
    if (c->maint_started) pthread_join(c->maint_th, NULL);
    if (c->watch_started) pthread_join(c->watch_th, NULL);
    c->maint_started = c->watch_started = 0;
    pthread_mutex_lock(&c->mu);
    c->router = NULL;   /* no swap into stopping workers */
    pthread_mutex_unlock(&c->mu);
}

void vigil_control_destroy(vigil_control *c) {
    if (!c) return;
    vigil_control_stop(c);
    vctl_cluster_free(c);
    if (c->inotify_fd >= 0) close(c->inotify_fd);
    vigil_ruleset_release(c->rs);
    vcat_free(&c->cat);
    vctl_lists_free(c);
    vctl_compare_free(c);
    pthread_mutex_destroy(&c->cmp_mu);
    vigil_catalog_store_close(c->store);
    pthread_mutex_destroy(&c->mu);
    pthread_rwlock_destroy(&c->snooze_lock);
    vctl_triage_free(c);
    pthread_rwlock_destroy(&c->triage_lock);
    free(c->snoozes);
    free(c);
}

void vigil_control_get_stats(vigil_control *c, vigil_control_stats *o) {
    memset(o, 0, sizeof *o);
    o->changes = atomic_load(&c->changes);
    o->reloads = atomic_load(&c->reloads);
    o->reload_errors = atomic_load(&c->reload_errors);
    o->swaps = atomic_load(&c->swaps);
    o->snoozed_alerts = atomic_load(&c->snoozed_alerts);
    pthread_rwlock_rdlock(&c->snooze_lock);
    o->snoozes = c->nsnoozes;
    pthread_rwlock_unlock(&c->snooze_lock);
    pthread_mutex_lock(&c->mu);
    o->rules = vcat_live_count(&c->cat);
    o->refused_max_rules = atomic_load(&c->refused_max_rules);
    vctl_cluster_stats(c, o);
    for (int i = 0; i < c->cat.n; i++)
        for (int j = 0; j < c->cat.rules[i]->nv; j++) o->draining += c->cat.rules[i]->v[j].state == VCAT_DRAINING;
    pthread_mutex_unlock(&c->mu);
}

/* ---- POST /v1/rules:test ---------------------------------------------------------- */

#define RULES_TEST_MAX_EVENTS 10000
/* The dry run's own wall clock: each Lua function call has its budget (host.c:
 * 100 ms), but 10,000 events of them would hold an HTTP thread for minutes. */
#define RULES_TEST_MAX_MS 10000

/* The answer lists the first RULES_TEST_MAX_ALERTS alerts (each up to 64 KiB
 * of details and 20 events of evidence) and counts the rest. */
#define RULES_TEST_MAX_ALERTS 1000

typedef struct dry { cJSON *alerts; int n, total; } dry;
static void dry_alert(void *ud, const vigil_alert *a) {
    dry *d = ud;
    if (d->total++ >= RULES_TEST_MAX_ALERTS) return;
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
 * no sinks touched); over RULES_TEST_MAX_ALERTS, "alerts_total" and
 * "alerts_truncated": true. Compile errors: 422 with every error; a bad event: 400
 * naming its index; a run over RULES_TEST_MAX_MS: 422 saying after how many
 * events it stopped. Events use the server's time and id fields. */
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
    int idx = 0, nevents = cJSON_GetArraySize(evs);
    int64_t t0 = vigil_now_ms();
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
        if (vigil_now_ms() - t0 > RULES_TEST_MAX_MS && idx < nevents) {
            vigil_engine_destroy(eng);
            vigil_ruleset_release(rs);
            cJSON_Delete(d.alerts);
            cJSON_Delete(in);
            char det[300];
            snprintf(det, sizeof det,
                     "the dry run stopped after %d of %d events: it ran over its %d ms (the rules' Lua functions "
                     "are slow on these events; send fewer)", idx, nevents, RULES_TEST_MAX_MS);
            return vigil_http_problem(c, 422, "Unprocessable Content", det, NULL, NULL);
        }
    }
    vigil_engine_advance(eng, INT64_MAX);   /* close windows, fire absences */
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    cJSON_Delete(in);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "events", idx);
    cJSON_AddItemToObject(out, "alerts", d.alerts);
    if (d.total > d.n) {
        cJSON_AddNumberToObject(out, "alerts_total", d.total);
        cJSON_AddBoolToObject(out, "alerts_truncated", 1);
    }
    return vigil_http_send_json(c, 200, out);
}


/* ---- GET /v1/rules, GET /v1/rules/{name} ------------------------------------------------- */

static unsigned long long count_alerts(void *ud, const char *name, int version) {
    vigil_control *c = ud;
    return c->cfg.sinks ? vigil_sinks_rule_alerts(c->cfg.sinks, name, version) : 0;
}

/* The rule name of /v1/rules/{name}[/action]: NULL when invalid. */
static int rule_name(const char *url, char *name, size_t n, const char **action) {
    const char *p = url + strlen("/v1/rules/");
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    *action = slash ? slash + 1 : "";
    if (len == 0 || len >= n || len > VIGIL_MAX_RULE_NAME) return -1;
    for (size_t i = 0; i < len; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_')) return -1;
    memcpy(name, p, len);
    name[len] = '\0';
    return 0;
}

static enum MHD_Result no_rule(struct MHD_Connection *conn, const char *name) {
    char d[160];
    snprintf(d, sizeof d, "no rule '%s'", name);
    return vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
}

/* What GET /v1/rules adds to a rule from the other wings: its dispositions
 * and precision (triage.c), and from the hub's ring its alerts in the last
 * hour and when it last alerted (wall clock: detection time). */
static void add_feedback(vigil_control *c, cJSON *x, const char *name) {
    vctl_triage_add_json(c, x, name);
    if (!c->cfg.hub) return;
    uint64_t n;
    int64_t last;
    vigil_hub_rule_activity(c->cfg.hub, name, vigil_now_ms() - 3600000, &n, &last);
    cJSON_AddNumberToObject(x, "alerts_last_hour", (double)n);
    if (last == INT64_MIN) {
        cJSON_AddNullToObject(x, "last_alert_at");
    } else {
        char t[40];
        vigil_time_format_rfc3339(last, t, sizeof t);
        cJSON_AddStringToObject(x, "last_alert_at", t);
    }
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(vcat_rule *const *)a)->name, (*(vcat_rule *const *)b)->name);
}

static enum MHD_Result get_rules(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    vigil_control *c = ctx;
    (void)r;
    if (strncmp(url, "/v1/rules/", 10) == 0) {
        char name[VIGIL_MAX_RULE_NAME + 1];
        const char *action;
        if (rule_name(url, name, sizeof name, &action) != 0)
            return vigil_http_problem(conn, 404, "Not Found", "no such resource", NULL, NULL);
        if (strcmp(action, "compare") == 0) return vctl_compare_get(c, conn, name);
        if (*action) return vigil_http_problem(conn, 404, "Not Found", "no such resource", NULL, NULL);
        pthread_mutex_lock(&c->mu);
        vcat_rule *rule = vcat_find(&c->cat, name);
        cJSON *o = rule && vcat_live(rule) ? vcat_rule_api(rule, 1, count_alerts, c) : NULL;
        pthread_mutex_unlock(&c->mu);
        if (!o) return no_rule(conn, name);
        add_feedback(c, o, name);
        vctl_cluster_add_instances(c, o, 0);   /* cluster mode: the version each instance runs */
        return vigil_http_send_json(conn, 200, o);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "rules");
    pthread_mutex_lock(&c->mu);
    vigil_ruleset *rs = c->rs;
    vcat_rule **sorted = malloc((size_t)(c->cat.n ? c->cat.n : 1) * sizeof *sorted);   /* by name: a stable list */
    if (!sorted) {
        pthread_mutex_unlock(&c->mu);
        cJSON_Delete(o);
        return MHD_NO;
    }
    memcpy(sorted, c->cat.rules, (size_t)c->cat.n * sizeof *sorted);
    qsort(sorted, (size_t)c->cat.n, sizeof *sorted, by_name);
    for (int i = 0; i < c->cat.n; i++) {
        vcat_rule *rule = sorted[i];
        if (!vcat_live(rule)) continue;
        cJSON *x = vcat_rule_api(rule, 0, count_alerts, c);
        int j = vigil_ruleset_rule_index(rs, rule->name);
        if (j >= 0) {
            cJSON_AddStringToObject(x, "severity", vigil_severity_str(vigil_ruleset_rule_severity(rs, j)));
            cJSON_AddStringToObject(x, "key", vigil_ruleset_rule_key(rs, j));
        }
        cJSON_AddItemToArray(a, x);
    }
    pthread_mutex_unlock(&c->mu);
    free(sorted);
    cJSON *x;
    cJSON_ArrayForEach(x, a) {   /* outside mu: the hub's lock is not taken under it */
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(x, "name");
        if (cJSON_IsString(nm)) add_feedback(c, x, nm->valuestring);
    }
    vctl_cluster_add_instances(c, a, 1);   /* cluster mode: the version each instance runs */
    return vigil_http_send_json(conn, 200, o);
}

/* {"name","version","mode","state","activated_at"}: what a change answers. */
static cJSON *version_json(const vcat_rule *rule, const vcat_ver *v) {
    cJSON *o = cJSON_CreateObject();
    char t[40];
    cJSON_AddStringToObject(o, "name", rule->name);
    cJSON_AddNumberToObject(o, "version", v->version);
    cJSON_AddStringToObject(o, "mode", vigil_mode_str(v->mode));
    cJSON_AddStringToObject(o, "state", vcat_state_str(v->state));
    vigil_time_format_rfc3339(v->activated_ms, t, sizeof t);
    cJSON_AddStringToObject(o, "activated_at", t);
    return o;
}

static enum MHD_Result change_failed(struct MHD_Connection *conn, vigil_status st, const vigil_error *err) {
    char d[1200];
    vigil_error_format(err, d, sizeof d);
    if (st == VIGIL_ECOMPILE || st == VIGIL_ETOOBIG) {
        cJSON *x = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(x, "errors");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "line", err->line);
        cJSON_AddStringToObject(e, "message", err->msg);
        cJSON_AddItemToArray(a, e);
        return vigil_http_problem(conn, 422, "Unprocessable Content", d, x, NULL);
    }
    if (st == VIGIL_EUNAVAILABLE || st == VIGIL_ESTORE)
        return vigil_http_problem(conn, 503, "Service Unavailable", d, NULL, "1");
    if (st == VIGIL_ECONFLICT)   /* cluster mode: another instance's change won the race */
        return vigil_http_problem(conn, 409, "Conflict", d, NULL, "1");
    return vigil_http_problem(conn, 500, "Internal Server Error", d, NULL, NULL);
}

/* ---- PUT /v1/rules/{name} ------------------------------------------------------------------ */

/* Apply src as the next version of rule `name` (PUT and rollback). Holds mu. */
static enum MHD_Result put_source(vigil_control *c, struct MHD_Connection *conn, const char *name, const char *src,
                                  size_t len, int force_version, const char *mode_arg, const char *action,
                                  int rollback_of, const char *who) {
    vigil_rule_info info[4];
    int ni = 0, nerrs = 0;
    vigil_error errs[16];
    char file[96];
    snprintf(file, sizeof file, "%s.lua", name);
    vigil_status st = vigil_rules_inspect(file, src, len, &c->ropts, info, 4, &ni, errs, 16, &nerrs);
    if (st != VIGIL_OK) {
        cJSON *x = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(x, "errors");
        for (int i = 0; i < nerrs && i < 16; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "line", errs[i].line);
            cJSON_AddStringToObject(e, "message", errs[i].msg);
            if (errs[i].rule[0]) cJSON_AddStringToObject(e, "rule", errs[i].rule);
            cJSON_AddItemToArray(a, e);
        }
        char d[1200];
        if (nerrs) vigil_error_format(&errs[0], d, sizeof d);
        else snprintf(d, sizeof d, "%s", vigil_status_str(st));
        return vigil_http_problem(conn, 422, "Unprocessable Content", d, x, NULL);
    }
    char d[400];
    if (ni != 1 || strcmp(info[0].name, name) != 0) {
        if (ni == 0) snprintf(d, sizeof d, "the source defines no rule; expected rule{ name = \"%s\", ... }", name);
        else if (ni > 1) snprintf(d, sizeof d, "the source defines %d rules; PUT /v1/rules/%s takes exactly one", ni, name);
        else snprintf(d, sizeof d, "the source defines rule '%s', not '%s'", info[0].name, name);
        return vigil_http_problem(conn, 409, "Conflict", d, NULL, NULL);
    }
    vigil_mode mode = info[0].mode;
    if (mode_arg) mode = strcmp(mode_arg, "shadow") == 0 ? VIGIL_MODE_SHADOW : VIGIL_MODE_ACTIVE;
    vcat_rule *rule = vcat_find(&c->cat, name);
    vcat_ver *latest = vcat_latest(rule), *live = vcat_live(rule), *beside = vcat_beside(rule);
    /* ?mode=shadow over an active version: the new version runs beside it (compare, promote) */
    int besides = mode_arg && mode == VIGIL_MODE_SHADOW && live && live->mode == VIGIL_MODE_ACTIVE;
    char hash[65];
    vcat_hash(src, len, hash);
    if (besides && beside && strcmp(beside->hash, hash) == 0)   /* the same shadow again */
        return vigil_http_send_json(conn, 200, version_json(rule, beside));
    if (!besides && live && strcmp(live->hash, hash) == 0 && live->mode == mode)   /* identical: no new version */
        return vigil_http_send_json(conn, 200, version_json(rule, live));
    int version = latest ? latest->version + 1 : 1;
    if (!force_version && info[0].version) {
        if (latest && info[0].version <= latest->version) {
            snprintf(d, sizeof d, "the source declares version %d; it must be greater than the latest version %d",
                     info[0].version, latest->version);
            return vigil_http_problem(conn, 409, "Conflict", d, NULL, NULL);
        }
        version = info[0].version;
    }
    if (!live && vcat_live_count(&c->cat) >= vctl_max_rules(c)) {
        snprintf(d, sizeof d, "too many rules: %d are served, the most allowed (limits.max_rules); delete one first",
                 vcat_live_count(&c->cat));
        atomic_fetch_add(&c->refused_max_rules, 1);
        return vigil_http_problem(conn, 422, "Unprocessable Content", d, NULL, NULL);
    }
    vctl_txn x;
    vctl_txn_init(&x, who);
    int created = !live;
    int live_version = live ? live->version : 0;   /* live points into rule->v: vcat_add_version may move it */
    if (vctl_touch(c, &x, name) != 0 || (!rule && !(rule = vcat_add_rule(&c->cat, name)))) {
        vctl_abort(c, &x);
        return MHD_NO;
    }
    int was_deleted = rule->deleted;
    rule->deleted = 0;
    rule->file[0] = '\0';   /* the API owns it now; its file's next edit takes it back */
    vcat_ver *v = vcat_add_version(rule, version, mode, src, len, who, vigil_now_ms());
    if (!v) {
        vctl_abort(c, &x);
        return vigil_http_problem(conn, 422, "Unprocessable Content", "too many versions of this rule", NULL, NULL);
    }
    if (was_deleted)
        for (int k = 0; k < rule->nv - 1; k++) rule->v[k].state = VCAT_DELETED;
    char det[96] = "";
    if (rollback_of) snprintf(det, sizeof det, "the source of version %d", rollback_of);
    if (besides) {   /* beside the running version; a shadow that ran beside it before retires */
        v = vcat_version(rule, version);
        vcat_ver *oldshadow = rule->shadow ? vcat_version(rule, rule->shadow) : NULL;
        if (oldshadow) {
            oldshadow->state = VCAT_RETIRED;
            oldshadow->ended_ms = oldshadow->retired_ms = vigil_now_ms();
        }
        rule->shadow = version;
        rule->shadow_since = v->activated_ms;
        snprintf(det, sizeof det, "shadow beside version %d", live_version);
    }
    vctl_audit(&x, action, name, live_version, version, det[0] ? det : NULL);
    vigil_error err;
    vigil_error_clear(&err);
    if ((st = vctl_commit(c, &x, &err)) != VIGIL_OK) return change_failed(conn, st, &err);
    rule = vcat_find(&c->cat, name);
    if (besides) {
        vctl_compare_start(c, name, vcat_live(rule)->version, version, rule->shadow_since);
        return vigil_http_send_json(conn, 200, version_json(rule, vcat_beside(rule)));
    }
    return vigil_http_send_json(conn, created ? 201 : 200, version_json(rule, vcat_live(rule)));
}

static enum MHD_Result put_rule(vigil_control *c, struct MHD_Connection *conn, const char *name, vigil_http_req *r) {
    if (r->too_big || r->len > VCAT_MAX_SOURCE) {
        char d[96];
        snprintf(d, sizeof d, "a rule source is at most %zu bytes", VCAT_MAX_SOURCE);
        return vigil_http_problem(conn, 413, "Content Too Large", d, NULL, NULL);
    }
    const char *mode = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "mode");
    if (mode && strcmp(mode, "active") != 0 && strcmp(mode, "shadow") != 0)
        return vigil_http_problem(conn, 400, "Bad Request", "mode must be \"active\" or \"shadow\"", NULL, NULL);
    pthread_mutex_lock(&c->mu);
    vctl_cluster_catch_up(c);   /* cluster mode: the change applies to the catalog the store holds */
    enum MHD_Result ret = put_source(c, conn, name, r->body ? r->body : "", r->len, 0, mode, "put", 0, r->who);
    pthread_mutex_unlock(&c->mu);
    return ret;
}

/* ---- DELETE, mode, rollback --------------------------------------------------------------- */

static enum MHD_Result delete_rule(vigil_control *c, struct MHD_Connection *conn, const char *name, const char *who) {
    pthread_mutex_lock(&c->mu);
    vctl_cluster_catch_up(c);
    vcat_rule *rule = vcat_find(&c->cat, name);
    vcat_ver *live = vcat_live(rule);
    if (!live) {
        pthread_mutex_unlock(&c->mu);
        return no_rule(conn, name);
    }
    vctl_txn x;
    if (vctl_begin(c, &x, who, name) != 0) {
        pthread_mutex_unlock(&c->mu);
        return MHD_NO;
    }
    int64_t now = vigil_now_ms();
    int from = live->version;
    rule->deleted = 1;
    rule->deleted_ms = now;
    if (rule->shadow) vctl_compare_stop(c, name);
    rule->shadow = 0;
    for (int k = 0; k < rule->nv; k++) {   /* draining versions too: no alert of it after the answer */
        if (rule->v[k].state != VCAT_RETIRED && rule->v[k].state != VCAT_DELETED) rule->v[k].ended_ms = now;
        rule->v[k].state = VCAT_DELETED;
    }
    vctl_audit(&x, "delete", name, from, 0, NULL);
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vctl_commit(c, &x, &err);
    pthread_mutex_unlock(&c->mu);
    if (st != VIGIL_OK) return change_failed(conn, st, &err);
    return vigil_http_send_text(conn, 204, "text/plain", "", 0);
}

static enum MHD_Result set_mode(vigil_control *c, struct MHD_Connection *conn, const char *name, vigil_http_req *r) {
    cJSON *in = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(in, "mode");
    int ok = cJSON_IsString(m) && (strcmp(m->valuestring, "active") == 0 || strcmp(m->valuestring, "shadow") == 0);
    vigil_mode mode = ok && strcmp(m->valuestring, "shadow") == 0 ? VIGIL_MODE_SHADOW : VIGIL_MODE_ACTIVE;
    cJSON_Delete(in);
    if (!ok) return vigil_http_problem(conn, 400, "Bad Request", "expected {\"mode\": \"active\" | \"shadow\"}", NULL, NULL);
    pthread_mutex_lock(&c->mu);
    vctl_cluster_catch_up(c);
    vcat_rule *rule = vcat_find(&c->cat, name);
    vcat_ver *live = vcat_live(rule);
    enum MHD_Result ret;
    if (!live) {
        ret = no_rule(conn, name);
    } else if (vcat_beside(rule)) {
        char d[200];
        snprintf(d, sizeof d, "version %d runs in shadow beside version %d: promote it (POST …/promote) or delete the "
                 "rule first", rule->shadow, live->version);
        ret = vigil_http_problem(conn, 409, "Conflict", d, NULL, NULL);
    } else if (live->mode == mode) {
        ret = vigil_http_send_json(conn, 200, version_json(rule, live));
    } else {
        vctl_txn x;
        if (vctl_begin(c, &x, r->who, name) != 0) {
            pthread_mutex_unlock(&c->mu);
            return MHD_NO;
        }
        live->mode = mode;
        live->state = mode == VIGIL_MODE_SHADOW ? VCAT_SHADOW : VCAT_ACTIVE;
        vctl_audit(&x, "mode", name, live->version, live->version, vigil_mode_str(mode));
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vctl_commit(c, &x, &err);
        rule = vcat_find(&c->cat, name);
        ret = st != VIGIL_OK ? change_failed(conn, st, &err) : vigil_http_send_json(conn, 200, version_json(rule, vcat_live(rule)));
    }
    pthread_mutex_unlock(&c->mu);
    return ret;
}

static enum MHD_Result rollback(vigil_control *c, struct MHD_Connection *conn, const char *name, vigil_http_req *r) {
    cJSON *in = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, "version");
    int version = cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble == (int)v->valuedouble ? (int)v->valuedouble : 0;
    cJSON_Delete(in);
    if (!version) return vigil_http_problem(conn, 400, "Bad Request", "expected {\"version\": n}, n a whole number >= 1", NULL, NULL);
    pthread_mutex_lock(&c->mu);
    vctl_cluster_catch_up(c);
    vcat_rule *rule = vcat_find(&c->cat, name);
    vcat_ver *old = vcat_live(rule) ? vcat_version(rule, version) : NULL;
    enum MHD_Result ret;
    if (!vcat_live(rule)) {
        ret = no_rule(conn, name);
    } else if (!old) {
        char d[160];
        snprintf(d, sizeof d, "rule '%s' has no version %d", name, version);
        ret = vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
    } else {
        char *src = strdup(old->src);   /* the catalog may move while it is applied */
        size_t len = old->len;
        ret = src ? put_source(c, conn, name, src, len, 1, vigil_mode_str(old->mode), "rollback", version, r->who)
                  : MHD_NO;
        free(src);
    }
    pthread_mutex_unlock(&c->mu);
    return ret;
}

/* POST /v1/rules/{name}/promote: the shadow running beside becomes the
 * active version (its state since the shadow started is kept); the old
 * active one retires, or drains when it has partial matches to finish. */
static enum MHD_Result promote(vigil_control *c, struct MHD_Connection *conn, const char *name, const char *who) {
    pthread_mutex_lock(&c->mu);
    vctl_cluster_catch_up(c);
    vcat_rule *rule = vcat_find(&c->cat, name);
    vcat_ver *live = vcat_live(rule), *beside = vcat_beside(rule);
    enum MHD_Result ret;
    if (!live) {
        ret = no_rule(conn, name);
    } else if (!beside) {
        char d[200];
        snprintf(d, sizeof d, "no shadow version runs beside version %d of '%s' (PUT …?mode=shadow starts one)",
                 live->version, name);
        ret = vigil_http_problem(conn, 409, "Conflict", d, NULL, NULL);
    } else {
        vctl_txn x;
        if (vctl_begin(c, &x, who, name) != 0) {
            pthread_mutex_unlock(&c->mu);
            return MHD_NO;
        }
        int from = live->version, to = beside->version;
        beside->mode = VIGIL_MODE_ACTIVE;
        beside->state = VCAT_ACTIVE;
        beside->activated_ms = vigil_now_ms();
        rule->shadow = 0;
        vctl_audit(&x, "promote", name, from, to, "the shadow version becomes the active one");
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vctl_commit(c, &x, &err);
        if (st == VIGIL_OK) vctl_compare_stop(c, name);
        rule = vcat_find(&c->cat, name);
        ret = st != VIGIL_OK ? change_failed(conn, st, &err) : vigil_http_send_json(conn, 200, version_json(rule, vcat_live(rule)));
    }
    pthread_mutex_unlock(&c->mu);
    return ret;
}

static enum MHD_Result rule_change(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    vigil_control *c = ctx;
    char name[VIGIL_MAX_RULE_NAME + 1];
    const char *action;
    if (rule_name(url, name, sizeof name, &action) != 0)
        return vigil_http_problem(conn, 404, "Not Found", "no such resource: a rule name is [a-z0-9_]+", NULL, NULL);
    if (strcmp(r->method, "PUT") == 0 && !*action) return put_rule(c, conn, name, r);
    if (strcmp(r->method, "DELETE") == 0 && !*action) return delete_rule(c, conn, name, r->who);
    if (strcmp(r->method, "POST") == 0 && strcmp(action, "mode") == 0) return set_mode(c, conn, name, r);
    if (strcmp(r->method, "POST") == 0 && strcmp(action, "rollback") == 0) return rollback(c, conn, name, r);
    if (strcmp(r->method, "POST") == 0 && strcmp(action, "promote") == 0) return promote(c, conn, name, r->who);
    if (strcmp(r->method, "GET") == 0 && strcmp(action, "compare") == 0) return vctl_compare_get(c, conn, name);
    if (strcmp(r->method, "POST") == 0 && strcmp(action, "snooze") == 0) {
        pthread_mutex_lock(&c->mu);
        vctl_cluster_catch_up(c);
        enum MHD_Result ret = vctl_snooze(c, conn, name, r);
        pthread_mutex_unlock(&c->mu);
        return ret;
    }
    return vigil_http_problem(conn, 404, "Not Found", "no such resource", NULL, NULL);
}

/* ---- GET /v1/audit ----------------------------------------------------------------------- */

static void audit_one(void *ud, const char *json) {
    cJSON *e = cJSON_Parse(json);
    if (e) cJSON_AddItemToArray(ud, e);
}

static enum MHD_Result get_audit(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    vigil_control *c = ctx;
    (void)url;
    (void)r;
    const char *ls = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *os = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "offset");
    char *end = NULL;
    long limit = ls ? strtol(ls, &end, 10) : 100, offset = 0;
    if ((ls && (*end || limit < 1 || limit > 10000)))
        return vigil_http_problem(conn, 400, "Bad Request", "limit must be 1..10000", NULL, NULL);
    if (os && ((offset = strtol(os, &end, 10)) < 0 || *end))
        return vigil_http_problem(conn, 400, "Bad Request", "offset must be a whole number >= 0", NULL, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "entries");
    vigil_error err;
    vigil_error_clear(&err);
    pthread_mutex_lock(&c->mu);
    vigil_status st = vigil_catalog_store_audit(c->store, (size_t)offset, (size_t)limit, audit_one, a, &err);
    pthread_mutex_unlock(&c->mu);
    if (st != VIGIL_OK) {
        cJSON_Delete(o);
        return change_failed(conn, st, &err);
    }
    return vigil_http_send_json(conn, 200, o);
}

void vigil_control_register(vigil_control *ctl, vigil_http *h) {
    vigil_http_route(h, "POST", "/v1/rules:test", 0, rules_test, ctl);
    vigil_http_route(h, "GET", "/v1/rules", 0, get_rules, ctl);
    vigil_http_route(h, "GET", "/v1/rules/", 1, get_rules, ctl);
    vigil_http_route(h, "PUT", "/v1/rules/", 1, rule_change, ctl);
    vigil_http_route(h, "DELETE", "/v1/rules/", 1, rule_change, ctl);
    vigil_http_route(h, "POST", "/v1/rules/", 1, rule_change, ctl);
    vigil_http_route(h, "GET", "/v1/audit", 0, get_audit, ctl);
    vigil_http_route(h, "GET", "/v1/keys/", 1, vctl_get_key, ctl);
    vigil_http_route(h, "GET", "/v1/lists", 0, vctl_lists, ctl);
    vigil_http_route(h, "GET", "/v1/lists/", 1, vctl_lists, ctl);
    vigil_http_route(h, "PUT", "/v1/lists/", 1, vctl_lists, ctl);
    vigil_http_route(h, "PUT", "/v1/alerts/", 1, vctl_triage_put, ctl);
}
