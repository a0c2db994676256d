/* compare.c — a shadow version beside the active one (DESIGN.md §6):
 * GET /v1/rules/{name}/compare reports, since the shadow started, the
 * alerts of the active version only, of the shadow only, and of both, with a
 * sample of each — what an analyst needs to decide on POST …/promote.
 *
 * Two alerts are "the same" when they share the key and the completing
 * event (`event`). Both versions see every event of a key on the same
 * worker, so the alerts of one event come out of the same batch: the
 * workers hand every committed batch's alerts to this file
 * (vigil_control_batch_alerts, through the router's alerts hook), which
 * matches them within the batch. The counts and samples are stored (the
 * catalog record "~compare:NAME") once a second while they change, so they
 * survive a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "control_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"
#include "server/common/log.h"

#define CMP_PREFIX "~compare:"
#define SAMPLES 5
#define SAMPLE_BYTES 8192
#define MATCH_MAX 4096   /* alerts of one rule in one batch matched pairwise; more: counted unmatched */

static const char *const KIND[3] = {"active_only", "shadow_only", "both"};

static vctl_cmp *find(vigil_control *c, const char *name) {
    for (int i = 0; i < c->ncmp; i++)
        if (strcmp(c->cmp[i].name, name) == 0) return &c->cmp[i];
    return NULL;
}

static void cmp_clear(vctl_cmp *m) {
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < SAMPLES; i++) free(m->samples[k][i]);
    memset(m, 0, sizeof *m);
}

void vctl_compare_free(vigil_control *c) {
    for (int i = 0; i < c->ncmp; i++) cmp_clear(&c->cmp[i]);
    free(c->cmp);
    c->cmp = NULL;
    c->ncmp = c->capcmp = 0;
}

static vctl_cmp *add(vigil_control *c, const char *name) {
    vctl_cmp *m = find(c, name);
    if (m) {
        cmp_clear(m);
    } else {
        if (c->ncmp == c->capcmp) {
            int cap = c->capcmp ? c->capcmp * 2 : 4;
            vctl_cmp *n = realloc(c->cmp, (size_t)cap * sizeof *n);
            if (!n) return NULL;
            c->cmp = n;
            c->capcmp = cap;
        }
        m = &c->cmp[c->ncmp++];
        memset(m, 0, sizeof *m);
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    return m;
}

void vctl_compare_start(vigil_control *c, const char *name, int active_v, int shadow_v, int64_t since) {
    pthread_mutex_lock(&c->cmp_mu);
    vctl_cmp *m = add(c, name);
    if (m) {
        m->active_v = active_v;
        m->shadow_v = shadow_v;
        m->since = since;
        m->dirty = 1;
    }
    atomic_store(&c->ncmp_live, c->ncmp);
    pthread_mutex_unlock(&c->cmp_mu);
}

void vctl_compare_stop(vigil_control *c, const char *name) {
    pthread_mutex_lock(&c->cmp_mu);
    vctl_cmp *m = find(c, name);
    if (m) {
        cmp_clear(m);
        *m = c->cmp[--c->ncmp];
    }
    atomic_store(&c->ncmp_live, c->ncmp);
    pthread_mutex_unlock(&c->cmp_mu);
    char key[96];
    snprintf(key, sizeof key, "%s%s", CMP_PREFIX, name);
    vigil_catalog_write w = {.kind = VIGIL_CW_RULE, .key = key, .value = NULL};
    vigil_error err;
    if (vigil_catalog_store_commit(c->store, &w, 1, &err) != VIGIL_OK)   /* the caller holds mu */
        vigil_log(VIGIL_LOG_WARN, "control", "forgetting the compare of %s: %s", name, err.msg);
}

static void sample(vctl_cmp *m, int k, const vigil_alert_record *a) {
    if (a->len > SAMPLE_BYTES) return;
    int i = m->nsamples[k] < SAMPLES ? m->nsamples[k]++ : (int)(m->counts[k] % SAMPLES);   /* the latest few */
    free(m->samples[k][i]);
    m->samples[k][i] = strndup(a->json, a->len);
}

void vigil_control_batch_alerts(void *ud, const vigil_alert_record *a, size_t n) {
    vigil_control *c = ud;
    if (!n || !atomic_load(&c->ncmp_live)) return;
    pthread_mutex_lock(&c->cmp_mu);
    for (int r = 0; r < c->ncmp; r++) {
        vctl_cmp *m = &c->cmp[r];
        const vigil_alert_record *act[MATCH_MAX], *sh[MATCH_MAX];
        int na = 0, ns = 0;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(a[i].rule, m->name) != 0) continue;
            if (a[i].rule_version == m->shadow_v) {
                if (ns < MATCH_MAX) sh[ns++] = &a[i];
                else m->counts[1]++;
            } else if (a[i].mode == VIGIL_MODE_ACTIVE) {
                if (na < MATCH_MAX) act[na++] = &a[i];
                else m->counts[0]++;
            }
        }
        if (!na && !ns) continue;
        for (int j = 0; j < ns; j++) {   /* the same key and completing event: both */
            int hit = -1;
            for (int i = 0; i < na && hit < 0; i++)
                if (act[i] && strcmp(act[i]->key, sh[j]->key) == 0 && strcmp(act[i]->event, sh[j]->event) == 0) hit = i;
            int k = hit >= 0 ? 2 : 1;
            sample(m, k, sh[j]);
            m->counts[k]++;
            if (hit >= 0) act[hit] = NULL;
        }
        for (int i = 0; i < na; i++)
            if (act[i]) {
                sample(m, 0, act[i]);
                m->counts[0]++;
            }
        m->dirty = 1;
    }
    pthread_mutex_unlock(&c->cmp_mu);
}

static cJSON *cmp_json(const vctl_cmp *m, int with_samples) {
    cJSON *o = cJSON_CreateObject();
    char t[40];
    vigil_time_format_rfc3339(m->since, t, sizeof t);
    cJSON_AddStringToObject(o, "since", t);
    cJSON_AddNumberToObject(o, "active_version", m->active_v);
    cJSON_AddNumberToObject(o, "shadow_version", m->shadow_v);
    for (int k = 0; k < 3; k++) cJSON_AddNumberToObject(o, KIND[k], (double)m->counts[k]);
    if (with_samples) {
        cJSON *s = cJSON_AddObjectToObject(o, "samples");
        for (int k = 0; k < 3; k++) {
            cJSON *arr = cJSON_AddArrayToObject(s, KIND[k]);
            for (int i = 0; i < m->nsamples[k]; i++) {
                cJSON *x = m->samples[k][i] ? cJSON_Parse(m->samples[k][i]) : NULL;
                if (x) cJSON_AddItemToArray(arr, x);
            }
        }
    }
    return o;
}

enum MHD_Result vctl_compare_get(vigil_control *c, struct MHD_Connection *conn, const char *name) {
    pthread_mutex_lock(&c->cmp_mu);
    vctl_cmp *m = find(c, name);
    cJSON *o = m ? cmp_json(m, 1) : NULL;
    pthread_mutex_unlock(&c->cmp_mu);
    if (!o) {
        char d[200];
        snprintf(d, sizeof d, "no shadow version runs beside the active one of '%s' (PUT /v1/rules/%s?mode=shadow "
                 "starts one)", name, name);
        return vigil_http_problem(conn, 404, "Not Found", d, NULL, NULL);
    }
    return vigil_http_send_json(conn, 200, o);
}

/* Once a second (the maintenance thread, holding mu): store what changed. */
void vctl_compare_flush(vigil_control *c) {
    pthread_mutex_lock(&c->cmp_mu);
    int n = 0;
    for (int i = 0; i < c->ncmp; i++) n += c->cmp[i].dirty;
    vigil_catalog_write *w = n ? calloc((size_t)n, sizeof *w) : NULL;
    char (*keys)[96] = n ? calloc((size_t)n, sizeof *keys) : NULL;
    char **texts = n ? calloc((size_t)n, sizeof *texts) : NULL;
    int k = 0;
    for (int i = 0; w && keys && texts && i < c->ncmp; i++) {
        vctl_cmp *m = &c->cmp[i];
        if (!m->dirty) continue;
        cJSON *o = cmp_json(m, 1);
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON_AddNumberToObject(o, "since_ms", (double)m->since);
        texts[k] = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!texts[k]) continue;
        snprintf(keys[k], sizeof keys[k], "%s%s", CMP_PREFIX, m->name);
        w[k] = (vigil_catalog_write){.kind = VIGIL_CW_RULE, .key = keys[k], .value = texts[k]};
        m->dirty = 0;
        k++;
    }
    atomic_store(&c->ncmp_live, c->ncmp);
    pthread_mutex_unlock(&c->cmp_mu);
    vigil_error err;
    if (k && vigil_catalog_store_commit(c->store, w, k, &err) != VIGIL_OK)
        vigil_log(VIGIL_LOG_WARN, "control", "storing shadow compare counts: %s (retried)", err.msg);
    for (int i = 0; texts && i < k; i++) free(texts[i]);
    free(texts);
    free(keys);
    free(w);
}

int vctl_compare_record(vigil_control *c, const char *key, const char *json) {
    if (strncmp(key, CMP_PREFIX, strlen(CMP_PREFIX)) != 0) return 0;
    cJSON *o = cJSON_Parse(json);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    vctl_cmp *m = cJSON_IsString(name) ? add(c, name->valuestring) : NULL;
    if (m) {
        m->active_v = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "active_version"));
        m->shadow_v = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "shadow_version"));
        m->since = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "since_ms"));
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "samples");
        for (int k = 0; k < 3; k++) {
            double v = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, KIND[k]));
            m->counts[k] = v > 0 ? (uint64_t)v : 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(s, KIND[k])) {
                if (m->nsamples[k] >= SAMPLES) break;
                m->samples[k][m->nsamples[k]++] = cJSON_PrintUnformatted(x);
            }
        }
    }
    atomic_store(&c->ncmp_live, c->ncmp);
    cJSON_Delete(o);
    return 1;
}

/* Cluster mode (issue 14): after a catalog read from the store, a compare
 * for each shadow the catalog has beside its active version (started from
 * the shadow's start, counting this instance's alerts) and none for a rule
 * without one. Nothing is stored here. Holds mu. */
void vctl_compare_sync(vigil_control *c) {
    pthread_mutex_lock(&c->cmp_mu);
    for (int i = 0; i < c->ncmp;) {   /* compares whose shadow is gone */
        vcat_rule *r = vcat_find(&c->cat, c->cmp[i].name);
        vcat_ver *b = vcat_beside(r);
        if (b && b->version == c->cmp[i].shadow_v) {
            i++;
            continue;
        }
        cmp_clear(&c->cmp[i]);
        c->cmp[i] = c->cmp[--c->ncmp];
    }
    pthread_mutex_unlock(&c->cmp_mu);
    for (int i = 0; i < c->cat.n; i++) {   /* shadows without a compare here */
        vcat_rule *r = c->cat.rules[i];
        vcat_ver *b = vcat_beside(r), *live = vcat_live(r);
        if (!b || !live) continue;
        pthread_mutex_lock(&c->cmp_mu);
        int have = find(c, r->name) != NULL;
        pthread_mutex_unlock(&c->cmp_mu);
        if (!have) vctl_compare_start(c, r->name, live->version, b->version, r->shadow_since);
    }
    pthread_mutex_lock(&c->cmp_mu);
    atomic_store(&c->ncmp_live, c->ncmp);
    pthread_mutex_unlock(&c->cmp_mu);
}
