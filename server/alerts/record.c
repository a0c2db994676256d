/* record.c — the server's one alert record (record.h): made once from the
 * engine's alert, handed to every sink. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "record.h"

void vigil_alert_record_set(vigil_alert_record *r, const char *id, const char *rule, const char *severity,
                            const char *key, vigil_mode mode, char *json, size_t len) {
    snprintf(r->id, sizeof r->id, "%s", id ? id : "");
    snprintf(r->rule, sizeof r->rule, "%s", rule ? rule : "");
    snprintf(r->severity, sizeof r->severity, "%s", severity ? severity : "");
    snprintf(r->key, sizeof r->key, "%s", key ? key : "");
    r->mode = mode;
    r->json = json;
    r->len = len;
}

vigil_status vigil_alert_record_from_alert(const vigil_alert *a, int64_t detected_ms, vigil_alert_record *out) {
    memset(out, 0, sizeof *out);
    char *json = vigil_alert_to_json(a, detected_ms);
    if (!json) return VIGIL_ENOMEM;
    vigil_alert_record_set(out, a->id, a->rule, vigil_severity_str(a->severity), a->key, a->mode, json,
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
