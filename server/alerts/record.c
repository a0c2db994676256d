/* record.c — the server's one alert record (record.h): made once from the
 * engine's alert, handed to every sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "record.h"

/* ,"instance":"<name>" (JSON-escaped), or "": set once before the workers start */
static char g_instance_member[600];
static size_t g_instance_len;

vigil_status vigil_alert_record_set_instance(const char *name) {
    if (!name || !*name) {
        g_instance_member[0] = '\0';
        g_instance_len = 0;
        return VIGIL_OK;
    }
    if (strlen(name) > 255) return VIGIL_ETOOBIG;
    cJSON *s = cJSON_CreateString(name);
    char *q = s ? cJSON_PrintUnformatted(s) : NULL;
    cJSON_Delete(s);
    if (!q) return VIGIL_ENOMEM;
    int n = snprintf(g_instance_member, sizeof g_instance_member, ",\"instance\":%s", q);
    free(q);
    g_instance_len = n > 0 && (size_t)n < sizeof g_instance_member ? (size_t)n : 0;
    return g_instance_len ? VIGIL_OK : VIGIL_ETOOBIG;
}

/* json (malloc'd, ending with '}') with the instance member before its '}'. */
static char *with_instance(char *json) {
    size_t len = strlen(json);
    if (!g_instance_len || len < 2 || json[len - 1] != '}') return json;
    char *j = realloc(json, len + g_instance_len + 1);
    if (!j) return json;   /* out of memory: the alert without it */
    memcpy(j + len - 1, g_instance_member, g_instance_len);
    j[len - 1 + g_instance_len] = '}';
    j[len + g_instance_len] = '\0';
    return j;
}

vigil_status vigil_alert_record_set(vigil_alert_record *r, const char *id, const char *rule, const char *severity,
                                    const char *key, vigil_mode mode, char *json, size_t len) {
    int id_fits = id && strnlen(id, sizeof r->id) < sizeof r->id;
    snprintf(r->id, sizeof r->id, "%s", id_fits ? id : "");
    snprintf(r->rule, sizeof r->rule, "%s", rule ? rule : "");
    snprintf(r->severity, sizeof r->severity, "%s", severity ? severity : "");
    snprintf(r->key, sizeof r->key, "%s", key ? key : "");
    r->mode = mode;
    r->json = json;
    r->len = len;
    return id_fits ? VIGIL_OK : VIGIL_EINVAL;
}

vigil_status vigil_alert_record_from_alert(const vigil_alert *a, int64_t detected_ms, vigil_alert_record *out) {
    memset(out, 0, sizeof *out);
    char *json = vigil_alert_to_json(a, detected_ms);
    if (!json) return VIGIL_ENOMEM;
    json = with_instance(json);
    (void)vigil_alert_record_set(out, a->id, a->rule, vigil_severity_str(a->severity), a->key, a->mode, json,
                           strlen(json));
    out->ts = a->ts;
    out->rule_version = a->rule_version;
    snprintf(out->event, sizeof out->event, "%s", a->event ? a->event : "");
    return VIGIL_OK;
}

void vigil_alert_record_free(vigil_alert_record *r) {
    if (!r) return;
    free(r->json);
    r->json = NULL;
    r->len = 0;
}
