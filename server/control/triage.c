/* triage.c — PUT /v1/alerts/{id}/disposition: an analyst marks an alert
 * confirmed fraud, a false positive or benign, with a note (DESIGN.md §6),
 * and the per-rule precision GET /v1/rules shows from those marks
 * (confirmed counts as true; false_positive and benign as false). This is
 * the feedback loop from the people who look at alerts back to the rules.
 *
 * Each disposition is one record of the catalog store (the reserved name
 * "~disp:<alert id>": no rule name has a '~'), written in the same commit
 * as its audit entry, so it is as durable as the rules are (Redis, else
 * data_dir, else memory) and reloaded at start (vctl_triage_record). The
 * table is a hash by alert id under its own rwlock: the hub reads it for
 * every alert GET /v1/alerts lists (vctl_triage_lookup, the hub's triage
 * hook, called under the hub's mutex — so nothing here calls the hub while
 * holding triage_lock). At most VCTL_MAX_DISPOSITIONS alerts are triaged;
 * a new one past that answers 422. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "control_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"

#define VCTL_BODY_MAX (6 * VCTL_NOTE_MAX + 256)

static const char *const KINDS[3] = {"confirmed", "false_positive", "benign"};

static int kind_of(const char *s) {
    for (int k = 0; k < 3; k++)
        if (strcmp(s, KINDS[k]) == 0) return k;
    return -1;
}

static uint64_t id_hash(const char *id) {   /* FNV-1a: ids are already uniform hex */
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

/* The slot of id, or the empty slot where it would go. Holds triage_lock. */
static vctl_disp *slot_for(vctl_disp *tab, size_t cap, const char *id) {
    size_t i = (size_t)id_hash(id) & (cap - 1);
    while (tab[i].id[0] && strcmp(tab[i].id, id) != 0) i = (i + 1) & (cap - 1);
    return &tab[i];
}

static vctl_disp *find(vigil_control *c, const char *id) {
    if (!c->disp_cap) return NULL;
    vctl_disp *d = slot_for(c->disp, c->disp_cap, id);
    return d->id[0] ? d : NULL;
}

/* Room for one more (grows at half full). Holds the write lock. -1: no memory. */
static int reserve(vigil_control *c) {
    if (c->disp_cap && (c->ndisp + 1) * 2 <= c->disp_cap) return 0;
    size_t cap = c->disp_cap ? c->disp_cap * 2 : 1024;
    vctl_disp *tab = calloc(cap, sizeof *tab);
    if (!tab) return -1;
    for (size_t i = 0; i < c->disp_cap; i++)
        if (c->disp[i].id[0]) *slot_for(tab, cap, c->disp[i].id) = c->disp[i];
    free(c->disp);
    c->disp = tab;
    c->disp_cap = cap;
    return 0;
}

static struct vctl_rule_disp *rule_counts(vigil_control *c, const char *rule, int add) {
    for (int i = 0; i < c->nrdisp; i++)
        if (strcmp(c->rdisp[i].rule, rule) == 0) return &c->rdisp[i];
    if (!add) return NULL;
    if (c->nrdisp == c->caprdisp) {
        int cap = c->caprdisp ? c->caprdisp * 2 : 16;
        struct vctl_rule_disp *g = realloc(c->rdisp, (size_t)cap * sizeof *g);
        if (!g) return NULL;
        c->rdisp = g;
        c->caprdisp = cap;
    }
    struct vctl_rule_disp *r = &c->rdisp[c->nrdisp++];
    memset(r, 0, sizeof *r);
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    return r;
}

/* Put (or replace) one disposition; takes note (malloc'd). Holds the write
 * lock. -1: out of memory (note freed, nothing changed). */
static int put(vigil_control *c, const char *id, const char *rule, int kind, char *note, const char *by, int64_t at) {
    vctl_disp *d = find(c, id);
    if (!d) {
        if (reserve(c) != 0) {
            free(note);
            return -1;
        }
        d = slot_for(c->disp, c->disp_cap, id);
        c->ndisp++;
    } else {
        struct vctl_rule_disp *old = rule_counts(c, d->rule, 0);
        if (old && old->n[d->kind]) old->n[d->kind]--;
        free(d->note);
    }
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->rule, sizeof d->rule, "%s", rule);
    snprintf(d->by, sizeof d->by, "%s", by);
    d->kind = (unsigned char)kind;
    d->note = note;
    d->at = at;
    struct vctl_rule_disp *rc = rule_counts(c, rule, 1);
    if (rc) rc->n[kind]++;
    return 0;
}

static cJSON *disp_json(const vctl_disp *d, int whole) {
    cJSON *o = cJSON_CreateObject();
    char t[40];
    vigil_time_format_rfc3339(d->at, t, sizeof t);
    if (whole) {
        cJSON_AddStringToObject(o, "id", d->id);
        cJSON_AddStringToObject(o, "rule", d->rule);
        cJSON_AddStringToObject(o, "disposition", KINDS[d->kind]);
    }
    cJSON_AddStringToObject(o, "note", d->note ? d->note : "");
    cJSON_AddStringToObject(o, "by", d->by);
    cJSON_AddStringToObject(o, "at", t);
    return o;
}

char *vctl_triage_lookup(void *ud, const char *alert_id, char kind[16]) {
    vigil_control *c = ud;
    char *out = NULL;
    kind[0] = '\0';
    pthread_rwlock_rdlock(&c->triage_lock);
    const vctl_disp *d = find(c, alert_id);
    if (d) {
        snprintf(kind, 16, "%s", KINDS[d->kind]);
        cJSON *o = disp_json(d, 0);
        out = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    pthread_rwlock_unlock(&c->triage_lock);
    return out;
}

void vctl_triage_counts(vigil_control *c, const char *rule, unsigned long long n[3]) {
    n[0] = n[1] = n[2] = 0;
    pthread_rwlock_rdlock(&c->triage_lock);
    const struct vctl_rule_disp *r = rule_counts(c, rule, 0);
    if (r) memcpy(n, r->n, sizeof r->n);
    pthread_rwlock_unlock(&c->triage_lock);
}

void vctl_triage_add_json(vigil_control *c, cJSON *rule_json, const char *rule) {
    unsigned long long n[3];
    vctl_triage_counts(c, rule, n);
    cJSON *d = cJSON_AddObjectToObject(rule_json, "dispositions");
    for (int k = 0; k < 3; k++) cJSON_AddNumberToObject(d, KINDS[k], (double)n[k]);
    unsigned long long all = n[0] + n[1] + n[2];
    if (all) cJSON_AddNumberToObject(rule_json, "precision", (double)n[0] / (double)all);
    else cJSON_AddNullToObject(rule_json, "precision");
}

int vctl_triage_record(vigil_control *c, const char *key, const char *json) {
    if (strncmp(key, VCTL_DISP_PREFIX, strlen(VCTL_DISP_PREFIX)) != 0) return 0;
    cJSON *o = cJSON_Parse(json);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"), *rule = cJSON_GetObjectItemCaseSensitive(o, "rule"),
                *k = cJSON_GetObjectItemCaseSensitive(o, "disposition"), *note = cJSON_GetObjectItemCaseSensitive(o, "note"),
                *by = cJSON_GetObjectItemCaseSensitive(o, "by"), *at = cJSON_GetObjectItemCaseSensitive(o, "at_ms");
    int kind = cJSON_IsString(k) ? kind_of(k->valuestring) : -1;
    if (!cJSON_IsString(id) || strlen(id->valuestring) != 32 || !cJSON_IsString(rule) || kind < 0) {
        fprintf(stderr, "vigil: the stored disposition %s is unreadable; skipped\n", key);
    } else {
        pthread_rwlock_wrlock(&c->triage_lock);
        put(c, id->valuestring, rule->valuestring, kind, strdup(cJSON_IsString(note) ? note->valuestring : ""),
            cJSON_IsString(by) ? by->valuestring : "local", cJSON_IsNumber(at) ? (int64_t)at->valuedouble : 0);
        pthread_rwlock_unlock(&c->triage_lock);
    }
    cJSON_Delete(o);
    return 1;
}

void vctl_triage_free(vigil_control *c) {
    for (size_t i = 0; i < c->disp_cap; i++) free(c->disp[i].note);
    free(c->disp);
    free(c->rdisp);
    c->disp = NULL;
    c->rdisp = NULL;
    c->disp_cap = c->ndisp = 0;
    c->nrdisp = c->caprdisp = 0;
}

static int is_alert_id(const char *s, size_t n) {
    if (n != 32) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static enum MHD_Result problem(struct MHD_Connection *conn, unsigned st, const char *title, const char *detail) {
    return vigil_http_problem(conn, st, title, detail, NULL, NULL);
}

/* PUT /v1/alerts/{id}/disposition {"disposition": "confirmed" | "false_positive" | "benign", "note": "…"} */
enum MHD_Result vctl_triage_put(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    vigil_control *c = ctx;
    const char *p = url + strlen("/v1/alerts/");
    const char *slash = strchr(p, '/');
    if (!slash || strcmp(slash, "/disposition") != 0)
        return problem(conn, 404, "Not Found", "no such resource (PUT /v1/alerts/{id}/disposition)");
    if (!is_alert_id(p, (size_t)(slash - p)))
        return problem(conn, 400, "Bad Request", "the alert id must be 32 lowercase hex digits (an alert's \"id\")");
    char id[33];
    memcpy(id, p, 32);
    id[32] = '\0';
    if (r->too_big || r->len > VCTL_BODY_MAX)   /* room for a 2000-byte note written with JSON escapes */
        return problem(conn, 413, "Content Too Large", "a disposition's body is at most 12 KiB");
    cJSON *in = r->body ? cJSON_ParseWithLength(r->body, r->len) : NULL;
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return problem(conn, 400, "Bad Request",
                       "expected a JSON object {\"disposition\": \"confirmed\" | \"false_positive\" | \"benign\", "
                       "\"note\": \"…\"}");
    }
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(in, "disposition"), *note = cJSON_GetObjectItemCaseSensitive(in, "note");
    const char *bad = NULL;
    int kind = cJSON_IsString(k) ? kind_of(k->valuestring) : -1;
    if (!k) bad = "disposition is missing: confirmed, false_positive or benign";
    else if (kind < 0) bad = "disposition must be \"confirmed\", \"false_positive\" or \"benign\"";
    else if (note && !cJSON_IsNull(note) && !cJSON_IsString(note)) bad = "note must be a text";
    else if (cJSON_IsString(note) && strlen(note->valuestring) > VCTL_NOTE_MAX) bad = "note is over 2000 bytes";
    if (bad) {
        cJSON_Delete(in);
        return problem(conn, 422, "Unprocessable Content", bad);
    }
    char *text = strdup(cJSON_IsString(note) ? note->valuestring : "");
    cJSON_Delete(in);
    if (!text) return MHD_NO;
    /* the alert: in the hub's ring, or triaged before (its rule is known) */
    char rule[VIGIL_MAX_RULE_NAME + 1] = "";
    int known = c->cfg.hub && vigil_hub_find(c->cfg.hub, id, rule, sizeof rule);
    pthread_rwlock_rdlock(&c->triage_lock);
    const vctl_disp *was = find(c, id);
    if (!known && was) {
        snprintf(rule, sizeof rule, "%s", was->rule);
        known = 1;
    }
    int full = !was && c->ndisp >= VCTL_MAX_DISPOSITIONS;
    pthread_rwlock_unlock(&c->triage_lock);
    if (!known) {
        free(text);
        char d[160];
        snprintf(d, sizeof d, "no alert '%s' among the recent alerts this server holds (GET /v1/alerts)", id);
        return problem(conn, 404, "Not Found", d);
    }
    if (full) {
        free(text);
        return problem(conn, 422, "Unprocessable Content", "too many triaged alerts (100000)");
    }
    int64_t now = vigil_now_ms();
    vctl_disp d = {.kind = (unsigned char)kind, .note = text, .at = now};
    snprintf(d.id, sizeof d.id, "%s", id);
    snprintf(d.rule, sizeof d.rule, "%s", rule);
    snprintf(d.by, sizeof d.by, "%s", r->who);
    cJSON *rec = disp_json(&d, 1);
    cJSON_AddNumberToObject(rec, "at_ms", (double)now);
    char *value = cJSON_PrintUnformatted(rec);
    cJSON_Delete(rec);
    char key[sizeof VCTL_DISP_PREFIX + 33];
    snprintf(key, sizeof key, "%s%s", VCTL_DISP_PREFIX, id);
    char det[VCTL_NOTE_MAX + 80];
    snprintf(det, sizeof det, "alert %s: %s%s%s", id, KINDS[kind], text[0] ? ": " : "", text);
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = VIGIL_ENOMEM;
    pthread_mutex_lock(&c->mu);   /* the store: one change at a time */
    vctl_cluster_catch_up(c);   /* cluster mode (issue 14) */
    if (value) {
        vctl_txn x;
        vctl_txn_init(&x, r->who);
        x.extra_key = key;
        x.extra_value = value;
        vctl_audit(&x, "disposition", rule, 0, 0, det);
        st = vctl_commit(c, &x, &err);
    }
    pthread_mutex_unlock(&c->mu);
    free(value);
    if (st != VIGIL_OK) {   /* not stored: not kept either */
        free(text);
        if (st == VIGIL_ECONFLICT) return vigil_http_problem(conn, 409, "Conflict", err.msg, NULL, "1");   /* cluster mode */
        return vigil_http_problem(conn, 503, "Service Unavailable", err.msg[0] ? err.msg : "out of memory", NULL, "1");
    }
    cJSON *out = disp_json(&d, 1);
    pthread_rwlock_wrlock(&c->triage_lock);
    int ok = put(c, id, rule, kind, text, r->who, now) == 0;
    pthread_rwlock_unlock(&c->triage_lock);
    if (!ok) {
        cJSON_Delete(out);
        return problem(conn, 500, "Internal Server Error", "stored, but out of memory to keep it: it shows after a restart");
    }
    return vigil_http_send_json(conn, 200, out);
}
