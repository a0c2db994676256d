/* lint.c — mistakes only a run can show (issue 12): a rule that reads a
 * field no event had (`tx_amout = lt(20)` compiles and silently never
 * matches), and a step or `where` that matched no event. `vigil replay`
 * and `vigil test` feed it the events they read and print its warnings
 * after their summary; the fields the events did have are listed, so a
 * typo is easy to spot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "lint.h"

#define NAMES_FROM 1000   /* events whose field names are collected (for the message) */
#define MAX_NAMES 200

struct vigil_lint {
    const vigil_ruleset *rs;
    int nfields, missing;     /* fields the rules read; of them, not seen yet */
    unsigned char *seen;
    uint64_t events;
    char *names[MAX_NAMES];   /* field names the first events had */
    int nnames;
};

vigil_lint *vigil_lint_create(const vigil_ruleset *rs) {
    vigil_lint *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->rs = rs;
    l->nfields = vigil_ruleset_field_count(rs);
    l->missing = l->nfields;
    if (!(l->seen = calloc((size_t)(l->nfields ? l->nfields : 1), 1))) {
        free(l);
        return NULL;
    }
    return l;
}

static void add_name(vigil_lint *l, const char *prefix, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
    for (int i = 0; i < l->nnames; i++)
        if (strcmp(l->names[i], full) == 0) return;
    if (l->nnames < MAX_NAMES && (l->names[l->nnames] = strdup(full))) l->nnames++;
}

void vigil_lint_event(vigil_lint *l, const vigil_event *ev) {
    if (!l) return;
    l->events++;
    for (int f = 0; l->missing && f < l->nfields; f++)
        if (!l->seen[f] && vigil_event_slot(ev, f)->type != VIGIL_T_MISSING) {
            l->seen[f] = 1;
            l->missing--;
        }
    if (l->events > NAMES_FROM) return;
    size_t len = 0;
    const char *js = vigil_event_json(ev, &len);
    cJSON *o = js ? cJSON_ParseWithLength(js, len) : NULL;
    const cJSON *x;
    cJSON_ArrayForEach(x, o) {
        add_name(l, "", x->string);
        const cJSON *y;
        if (cJSON_IsObject(x)) cJSON_ArrayForEach(y, x) add_name(l, x->string, y->string);   /* card.bin */
    }
    cJSON_Delete(o);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int vigil_lint_report(vigil_lint *l, const vigil_engine *eng, FILE *out, const char *who) {
    if (!l || !l->events) return 0;
    int warnings = 0;
    int nr = vigil_ruleset_rule_count(l->rs);
    qsort(l->names, (size_t)l->nnames, sizeof *l->names, cmp_str);
    char seen[2048] = "";
    size_t used = 0;
    for (int i = 0; i < l->nnames && used < sizeof seen - 80; i++) {
        int w = snprintf(seen + used, sizeof seen - used, "%s%s", i ? ", " : "", l->names[i]);
        if (w > 0) used += (size_t)w;
    }
    if (used >= sizeof seen - 80) snprintf(seen + used, sizeof seen - used, ", …");
    for (int r = 0; r < nr; r++) {
        const char *name = vigil_ruleset_rule_name(l->rs, r);
        int fields[64];
        int nf = vigil_ruleset_rule_fields(l->rs, r, fields, 64);
        for (int k = 0; k < nf; k++) {
            if (l->seen[fields[k]]) continue;
            fprintf(out, "%s: warning: rule '%s' reads field '%s', which no event had (%llu events; fields seen: %s)\n",
                    who, name, vigil_ruleset_field_path(l->rs, fields[k]), (unsigned long long)l->events, seen);
            warnings++;
        }
        if (!eng) continue;
        int ns = vigil_ruleset_step_count(l->rs, r);
        if (ns == 0 && vigil_engine_step_matches(eng, r, 0) == 0 && vigil_ruleset_rule_window(l->rs, r) != VIGIL_WIN_NONE) {
            fprintf(out, "%s: warning: rule '%s': its `where` matched no event\n", who, name);
            warnings++;
        }
        for (int s = 0; s < ns; s++) {   /* a negation that never matched is what it is for */
            if (vigil_ruleset_step_negative(l->rs, r, s) || vigil_engine_step_matches(eng, r, s)) continue;
            fprintf(out, "%s: warning: rule '%s', step '%s': its where matched no event%s\n", who, name,
                    vigil_ruleset_step_name(l->rs, r, s), s ? " (or no partial match reached it)" : "");
            warnings++;
        }
    }
    return warnings;
}

void vigil_lint_destroy(vigil_lint *l) {
    if (!l) return;
    for (int i = 0; i < l->nnames; i++) free(l->names[i]);
    free(l->seen);
    free(l);
}
