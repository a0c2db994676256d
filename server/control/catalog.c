/* catalog.c — the served rule catalog (catalog.h): its versions and their
 * states, its stored JSON record per rule, its API shape, and the ruleset
 * built from it. What a change means (which version drains, which one
 * inherits) is decided in control.c; this file keeps the facts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <cjson/cJSON.h>
#include "catalog.h"
#include "vigil/clock.h"
#include "vigil/event.h"

const char *vcat_state_str(vcat_state s) {
    static const char *n[] = {"active", "shadow", "draining", "retired", "deleted"};
    return (unsigned)s < 5 ? n[s] : "retired";
}

static void ver_free(vcat_ver *v) { free(v->src); }

static void rule_free(vcat_rule *r) {
    if (!r) return;
    for (int i = 0; i < r->nv; i++) ver_free(&r->v[i]);
    free(r->v);
    free(r);
}

void vcat_free(vigil_catalog *c) {
    for (int i = 0; i < c->n; i++) rule_free(c->rules[i]);
    free(c->rules);
    for (int i = 0; i < c->nfiles; i++) free(c->files[i].path);
    free(c->files);
    memset(c, 0, sizeof *c);
}

vcat_rule *vcat_find(vigil_catalog *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->rules[i]->name, name) == 0) return c->rules[i];
    return NULL;
}

vcat_rule *vcat_add_rule(vigil_catalog *c, const char *name) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 32;
        vcat_rule **nr = realloc(c->rules, (size_t)cap * sizeof *nr);
        if (!nr) return NULL;
        c->rules = nr;
        c->cap = cap;
    }
    vcat_rule *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    snprintf(r->name, sizeof r->name, "%s", name);
    c->rules[c->n++] = r;
    return r;
}

vcat_ver *vcat_latest(vcat_rule *r) { return r && r->nv ? &r->v[r->nv - 1] : NULL; }

vcat_ver *vcat_version(vcat_rule *r, int version) {
    for (int i = 0; r && i < r->nv; i++)
        if (r->v[i].version == version) return &r->v[i];
    return NULL;
}

vcat_ver *vcat_live(vcat_rule *r) {
    if (!r || r->deleted || !r->nv) return NULL;
    for (int i = r->nv - 1; i >= 0; i--)
        if (r->v[i].version != r->shadow && (r->v[i].state == VCAT_ACTIVE || r->v[i].state == VCAT_SHADOW))
            return &r->v[i];
    return vcat_latest(r);
}

vcat_ver *vcat_beside(vcat_rule *r) { return r && !r->deleted && r->shadow ? vcat_version(r, r->shadow) : NULL; }

int vcat_live_count(const vigil_catalog *c) {
    int n = 0;
    for (int i = 0; i < c->n; i++) n += !c->rules[i]->deleted && c->rules[i]->nv > 0;
    return n;
}

void vcat_hash(const void *data, size_t len, char out[65]) {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_Digest(data, len, d, &dl, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32 && i < dl; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[64] = '\0';
}

vcat_ver *vcat_add_version(vcat_rule *r, int version, vigil_mode mode, const char *src, size_t len,
                           const char *by, int64_t now_ms) {
    if (r->nv >= VCAT_MAX_VERSIONS) return NULL;
    if (r->nv == r->capv) {
        int cap = r->capv ? r->capv * 2 : 4;
        vcat_ver *nv = realloc(r->v, (size_t)cap * sizeof *nv);
        if (!nv) return NULL;
        r->v = nv;
        r->capv = cap;
    }
    vcat_ver *v = &r->v[r->nv];
    memset(v, 0, sizeof *v);
    if (!(v->src = malloc(len + 1))) return NULL;
    memcpy(v->src, src, len);
    v->src[len] = '\0';
    v->len = len;
    vcat_hash(src, len, v->hash);
    v->version = version;
    v->inherits = 0;   /* decided by the first build over the running rules (0: not yet) */
    v->mode = mode;
    v->state = mode == VIGIL_MODE_SHADOW ? VCAT_SHADOW : VCAT_ACTIVE;
    v->activated_ms = now_ms;
    snprintf(v->by, sizeof v->by, "%s", by ? by : "local");
    r->nv++;
    return v;
}

const char *vcat_file_hash(vigil_catalog *c, const char *path) {
    for (int i = 0; i < c->nfiles; i++)
        if (strcmp(c->files[i].path, path) == 0) return c->files[i].hash;
    return NULL;
}

int vcat_set_file_hash(vigil_catalog *c, const char *path, const char *hash) {
    for (int i = 0; i < c->nfiles; i++) {
        if (strcmp(c->files[i].path, path) != 0) continue;
        if (hash) {
            snprintf(c->files[i].hash, sizeof c->files[i].hash, "%s", hash);
        } else {
            free(c->files[i].path);
            c->files[i] = c->files[--c->nfiles];
        }
        return 0;
    }
    if (!hash) return 0;
    if (c->nfiles == c->capfiles) {
        int cap = c->capfiles ? c->capfiles * 2 : 32;
        vcat_file *nf = realloc(c->files, (size_t)cap * sizeof *nf);
        if (!nf) return -1;
        c->files = nf;
        c->capfiles = cap;
    }
    if (!(c->files[c->nfiles].path = strdup(path))) return -1;
    snprintf(c->files[c->nfiles].hash, sizeof c->files[0].hash, "%s", hash);
    c->nfiles++;
    return 0;
}

/* ---- the stored record ------------------------------------------------------------- */

static vcat_state state_of(const char *s) {
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, vcat_state_str((vcat_state)i)) == 0) return (vcat_state)i;
    return VCAT_RETIRED;
}

char *vcat_rule_json(const vcat_rule *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    cJSON_AddStringToObject(o, "file", r->file);
    cJSON_AddBoolToObject(o, "deleted", r->deleted);
    cJSON_AddNumberToObject(o, "deleted_ms", (double)r->deleted_ms);
    cJSON_AddNumberToObject(o, "shadow", r->shadow);
    cJSON_AddNumberToObject(o, "shadow_since_ms", (double)r->shadow_since);
    cJSON *a = cJSON_AddArrayToObject(o, "versions");
    for (int i = 0; a && i < r->nv; i++) {
        const vcat_ver *v = &r->v[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "version", v->version);
        cJSON_AddStringToObject(x, "mode", vigil_mode_str(v->mode));
        cJSON_AddStringToObject(x, "state", vcat_state_str(v->state));
        cJSON_AddNumberToObject(x, "inherits", v->inherits);
        cJSON_AddNumberToObject(x, "activated_ms", (double)v->activated_ms);
        cJSON_AddNumberToObject(x, "ended_ms", (double)v->ended_ms);
        cJSON_AddNumberToObject(x, "retired_ms", (double)v->retired_ms);
        cJSON_AddStringToObject(x, "hash", v->hash);
        cJSON_AddStringToObject(x, "by", v->by);
        cJSON_AddStringToObject(x, "source", v->src);
        cJSON_AddItemToArray(a, x);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

int vcat_rule_from_json(vigil_catalog *c, const char *name, const char *json, const char **why) {
    cJSON *o = cJSON_Parse(json);
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(o, "versions");
    if (!cJSON_IsObject(o) || !cJSON_IsArray(vs)) {
        cJSON_Delete(o);
        *why = "not a rule record (expected {\"name\", \"versions\": [...]})";
        return -1;
    }
    vcat_rule *r = calloc(1, sizeof *r);
    if (!r) {
        cJSON_Delete(o);
        *why = "out of memory";
        return -1;
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->file, sizeof r->file, "%s", str(o, "file") ? str(o, "file") : "");
    r->deleted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted"));
    r->deleted_ms = (int64_t)num(o, "deleted_ms");
    r->shadow = (int)num(o, "shadow");
    r->shadow_since = (int64_t)num(o, "shadow_since_ms");
    const cJSON *x;
    int bad = 0;
    cJSON_ArrayForEach(x, vs) {
        const char *src = str(x, "source");
        int version = (int)num(x, "version");
        if (!src || version < 1 || (r->nv && version <= r->v[r->nv - 1].version)) {
            bad = 1;
            break;
        }
        const char *mode = str(x, "mode");
        vcat_ver *v = vcat_add_version(r, version, mode && strcmp(mode, "shadow") == 0 ? VIGIL_MODE_SHADOW
                                                                                      : VIGIL_MODE_ACTIVE,
                                       src, strlen(src), str(x, "by"), (int64_t)num(x, "activated_ms"));
        if (!v) {
            bad = 2;
            break;
        }
        v->state = state_of(str(x, "state"));
        v->inherits = (int)num(x, "inherits");
        if (v->inherits < 1 || v->inherits > version) v->inherits = version;
        v->ended_ms = (int64_t)num(x, "ended_ms");
        v->retired_ms = (int64_t)num(x, "retired_ms");
    }
    cJSON_Delete(o);
    if (bad) {
        rule_free(r);
        *why = bad == 2 ? "out of memory" : "a version without source, or versions out of order";
        return -1;
    }
    for (int i = 0; i < c->n; i++)   /* replace */
        if (strcmp(c->rules[i]->name, name) == 0) {
            rule_free(c->rules[i]);
            c->rules[i] = r;
            return 0;
        }
    vcat_rule *slot = vcat_add_rule(c, name);
    if (!slot) {
        rule_free(r);
        *why = "out of memory";
        return -1;
    }
    c->rules[c->n - 1] = r;
    free(slot);
    return 0;
}

/* ---- the API shape --------------------------------------------------------------------- */

static void add_time(cJSON *o, const char *k, int64_t ms) {
    if (!ms) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char t[40];
    vigil_time_format_rfc3339(ms, t, sizeof t);
    cJSON_AddStringToObject(o, k, t);
}

cJSON *vcat_rule_api(const vcat_rule *r, int with_sources,
                     unsigned long long (*count)(void *ud, const char *name, int version), void *ud) {
    vcat_rule *rr = (vcat_rule *)r;
    const vcat_ver *live = vcat_live(rr);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->name);
    if (live) {
        cJSON_AddNumberToObject(o, "version", live->version);
        cJSON_AddStringToObject(o, "mode", vigil_mode_str(live->mode));
        cJSON_AddStringToObject(o, "state", vcat_state_str(live->state));
        add_time(o, "activated_at", live->activated_ms);
    }
    const vcat_ver *beside = vcat_beside(rr);
    if (beside) {
        cJSON_AddNumberToObject(o, "shadow_version", beside->version);
        add_time(o, "shadow_since", r->shadow_since);
    }
    cJSON_AddStringToObject(o, "file", r->file);
    unsigned long long total = 0;
    cJSON *a = cJSON_AddArrayToObject(o, "versions");
    for (int i = 0; i < r->nv; i++) {
        const vcat_ver *v = &r->v[i];
        unsigned long long n = count ? count(ud, r->name, v->version) : 0;
        total += n;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "version", v->version);
        cJSON_AddStringToObject(x, "mode", vigil_mode_str(v->mode));
        cJSON_AddStringToObject(x, "state", vcat_state_str(v->state));
        add_time(x, "activated_at", v->activated_ms);
        add_time(x, "ended_at", v->ended_ms);
        add_time(x, "retired_at", v->retired_ms);
        cJSON_AddNumberToObject(x, "inherits_from", v->inherits);
        cJSON_AddNumberToObject(x, "alerts", (double)n);
        cJSON_AddStringToObject(x, "by", v->by);
        cJSON_AddStringToObject(x, "sha256", v->hash);
        if (with_sources) cJSON_AddStringToObject(x, "source", v->src);
        cJSON_AddItemToArray(a, x);
    }
    cJSON_AddNumberToObject(o, "alerts", (double)total);
    return o;
}

/* ---- the ruleset ------------------------------------------------------------------------ */

vigil_status vcat_build(const vigil_catalog *c, const vigil_ruleset *base, const vigil_rules_opts *opts,
                        vigil_ruleset **out, vigil_error *errs, int maxerrs, int *nerrs) {
    int nv = 0;
    for (int i = 0; i < c->n; i++)
        for (int j = 0; j < c->rules[i]->nv; j++) {
            vcat_state st = c->rules[i]->v[j].state;
            nv += st == VCAT_ACTIVE || st == VCAT_SHADOW || st == VCAT_DRAINING;
        }
    vigil_rule_source *srcs = calloc((size_t)(nv ? nv : 1), sizeof *srcs);
    vigil_rule_pick *picks = calloc((size_t)(nv ? nv : 1), sizeof *picks);
    char (*files)[96] = calloc((size_t)(nv ? nv : 1), sizeof *files);
    if (!srcs || !picks || !files) {
        free(srcs);
        free(picks);
        free(files);
        return VIGIL_ENOMEM;
    }
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        const vcat_rule *r = c->rules[i];
        for (int j = 0; j < r->nv; j++) {
            const vcat_ver *v = &r->v[j];
            if (v->state != VCAT_ACTIVE && v->state != VCAT_SHADOW && v->state != VCAT_DRAINING) continue;
            if (r->deleted) continue;
            picks[n] = (vigil_rule_pick){.name = r->name, .version = v->version, .mode = v->mode,
                                         .draining = v->state == VCAT_DRAINING, .inherits = v->inherits};
            if (v->version == r->shadow) picks[n].inherits = v->version;   /* beside: it starts empty */
            snprintf(files[n], sizeof files[n], "%s v%d", r->name, v->version);
            srcs[n] = (vigil_rule_source){.file = files[n], .src = v->src, .len = v->len, .picks = &picks[n],
                                          .npicks = 1};
            n++;
        }
    }
    vigil_status st = vigil_rules_build(srcs, n, base, opts, out, errs, maxerrs, nerrs);
    free(srcs);
    free(picks);
    free(files);
    return st;
}
