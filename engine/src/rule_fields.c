/* rule_fields.c — which event fields a rule reads, and how often each of
 * its conditions held: what `vigil replay` and `vigil test` need to warn
 * about mistakes the compiler cannot see alone (issue 12): a field no event
 * has (`tx_amout = lt(20)` compiles and never matches), a step or `where`
 * that matched no event. */
#include <string.h>
#include "engine_int.h"

static void walk(const vigil_expr *x, int *out, int *n, int max) {
    if (!x) return;
    if (x->field >= 0 && (x->op == VIGIL_X_FIELD || x->op == VIGIL_X_REF || x->op == VIGIL_X_AGG ||
                          x->op == VIGIL_X_IS_NEW)) {
        int dup = 0;
        for (int i = 0; i < *n && !dup; i++) dup = out[i] == x->field;
        if (!dup && *n < max) out[(*n)++] = x->field;
    }
    if (x->op == VIGIL_X_AGG) walk(x->filter, out, n, max);
    for (int i = 0; i < x->nargs; i++) walk(x->args[i], out, n, max);
}

int vigil_ruleset_rule_fields(const vigil_ruleset *rs, int rule, int *out, int max) {
    if (rule < 0 || rule >= rs->nrules) return 0;
    const vrule *r = &rs->rules[rule];
    int n = 0;
    if (max > 0) out[n++] = r->key_field;
    for (int i = 0; i < r->nsteps; i++) {
        walk(r->steps[i].cond, out, &n, max);
        walk(r->steps[i].stop_when, out, &n, max);
    }
    walk(r->where, out, &n, max);
    walk(r->when, out, &n, max);
    return n;
}

const char *vigil_ruleset_field_path(const vigil_ruleset *rs, int f) {
    return f >= 0 && f < rs->nfields ? rs->fields[f] : NULL;
}

uint64_t vigil_engine_step_matches(const vigil_engine *eng, int rule, int step) {
    if (!eng->step_hits || rule < 0 || rule >= eng->rs->nrules || step < 0 || step >= VIGIL_MAX_STEPS) return 0;
    return eng->step_hits[(size_t)rule * VIGIL_MAX_STEPS + (size_t)step];
}

int vigil_ruleset_step_negative(const vigil_ruleset *rs, int rule, int step) {
    if (rule < 0 || rule >= rs->nrules || step < 0 || step >= rs->rules[rule].nsteps) return 0;
    return rs->rules[rule].steps[step].negative;
}
