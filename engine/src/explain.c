/* explain.c — what the engine holds for one key, for an analyst asking
 * "why did this key (not) alert?" (DESIGN.md §6, GET /v1/keys/{field}/{value}).
 *
 * The engine reports, the server renders: per rule of the key's group, the
 * pattern's partial matches (the step each reached, its events, when it
 * started and when `within` ends it), or the window (its bounds as of the
 * key's last event, its entries, every aggregate now and as prior(…), the
 * value of `when` and of each operand of its comparisons), and the rule's
 * last alert and suppression. Nothing changes: explain only reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine_int.h"

#define TEXT 160

typedef struct operands {
    vigil_explain_value *v;
    char (*text)[TEXT];
    int n, cap;
} operands;

static int is_cmp(vigil_expr_op op) {
    return op == VIGIL_X_EQ || op == VIGIL_X_NE || op == VIGIL_X_GT || op == VIGIL_X_GE || op == VIGIL_X_LT ||
           op == VIGIL_X_LE || op == VIGIL_X_BETWEEN || op == VIGIL_X_ONE_OF || op == VIGIL_X_EXISTS ||
           op == VIGIL_X_MISSING;
}

static int reads_host(const vigil_expr *x) {
    if (!x) return 0;
    if (x->op == VIGIL_X_HOST) return 1;
    for (int i = 0; i < x->nargs; i++)
        if (reads_host(x->args[i])) return 1;
    return 0;
}

static int reads_fields(const vigil_expr *x) {
    if (!x) return 0;
    if (x->op == VIGIL_X_FIELD || x->op == VIGIL_X_HOST) return 1;
    if (x->op == VIGIL_X_AGG) return 0;   /* its filter is over the window's events */
    for (int i = 0; i < x->nargs; i++)
        if (reads_fields(x->args[i])) return 1;
    return 0;
}

/* The comparisons' non-constant arguments, each once, with their values. */
static void collect(const vigil_expr *x, const veval *c, int fields_ok, operands *o) {
    if (!x || o->n >= o->cap) return;
    if (!is_cmp(x->op)) {
        for (int i = 0; i < x->nargs; i++) collect(x->args[i], c, fields_ok, o);
        return;
    }
    for (int i = 0; i < x->nargs && o->n < o->cap; i++) {
        const vigil_expr *a = x->args[i];
        if (a->op == VIGIL_X_CONST) continue;
        char t[TEXT];
        vexpr_text(a, t, sizeof t);
        int dup = 0;
        for (int j = 0; j < o->n && !dup; j++) dup = strcmp(o->text[j], t) == 0;
        if (dup) continue;
        memcpy(o->text[o->n], t, sizeof t);
        o->v[o->n].expr = o->text[o->n];
        o->v[o->n].value = !fields_ok && reads_fields(a) ? (vigil_value){.type = VIGIL_T_MISSING} : vexpr_eval(a, c);
        o->n++;
    }
}

static vigil_status explain_pattern(const vrule *r, const vpat *p, vigil_explain_rule *out, void **owned) {
    uint32_t n = p ? p->nruns : 0;
    vigil_explain_run *runs = calloc(n ? n : 1, sizeof *runs);
    const char **ids = NULL;
    size_t nids = 0;
    for (uint32_t i = 0; i < n; i++) nids += p->runs[i].nev;
    owned[0] = runs;
    if (!runs || (nids && !(ids = malloc(nids * sizeof *ids)))) return VIGIL_ENOMEM;
    owned[1] = (void *)ids;
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        const vrun *run = &p->runs[i];
        int step = run->nev ? run->evstep[run->nev - 1] : run->step;
        runs[i].step = step >= 0 && step < r->nsteps ? r->steps[step].name : "";
        runs[i].events = ids + at;
        for (uint32_t j = 0; j < run->nev; j++) ids[at++] = run->ev[j]->id;
        runs[i].nevents = (int)run->nev;
        runs[i].started = run->start_ts;
        runs[i].expires = r->within_ms ? run->start_ts + r->within_ms : INT64_MAX;
        runs[i].completed = run->held;
    }
    out->runs = runs;
    out->nruns = (int)n;
    out->last_alert = p && p->alerted ? p->last_alert_ts : INT64_MIN;
    out->suppressed_until = p && p->alerted && r->suppress_ms ? p->last_alert_ts + r->suppress_ms : INT64_MIN;
    return VIGIL_OK;
}

static void when_fields(const vigil_expr *x, int *out, int *n, int max) {
    if (!x || x->op == VIGIL_X_AGG) return;
    if (x->op == VIGIL_X_FIELD && *n < max) out[(*n)++] = x->field;
    for (int i = 0; i < x->nargs; i++) when_fields(x->args[i], out, n, max);
}

/* A sliding window keeps no event, but its newest entry holds the last
 * event's value of each field an aggregate reads (when the event passed
 * that aggregate's filter). When every field `when` reads on the current
 * event (e.f) is one of those, they make an event to evaluate `when` as at
 * the last event; NULL otherwise (or with precision: a bucket is a sum). */
static vigil_event *recover_last(vigil_engine *eng, const vrule *r, const vwin *w) {
    int need[16], nn = 0;
    when_fields(r->when, need, &nn, 16);
    if (!nn || nn == 16 || !w->n || r->precision_ms || reads_host(r->when)) return NULL;
    const ventry *e = vwin_at(w, r, w->n - 1);
    vigil_event *ev = vev_new(eng->rs->nfields, 0);
    if (!ev) return NULL;
    ev->id = "";
    for (int i = 0; i < nn; i++) {
        int found = 0;
        for (int k = 0; k < r->nagg && !found; k++) {
            const vagg *a = &r->aggs[k];
            if (a->field != need[i] || a->is_new || a->kind == VIGIL_AGG_COUNT || !(e->mask >> k & 1)) continue;
            if (a->kind == VIGIL_AGG_DISTINCT) {   /* a type tag, then the text (window.c) */
                const char *t = e->v[k].str;
                if (t[0] == VWIN_TAG_NUM)
                    ev->slots[need[i]] = (vigil_value){.type = VIGIL_T_NUM, .u.num = strtod(t + 1, NULL)};
                else if (t[0] == VWIN_TAG_BOOL)
                    ev->slots[need[i]] = (vigil_value){.type = VIGIL_T_BOOL, .u.b = t[1] == 't'};
                else
                    ev->slots[need[i]] = (vigil_value){.type = VIGIL_T_STR, .len = (uint32_t)strlen(t + 1),
                                                       .u.str = t + 1};
            } else
                ev->slots[need[i]] = (vigil_value){.type = VIGIL_T_NUM, .u.num = e->v[k].num};
            found = 1;
        }
        if (!found) {
            vigil_event_release(ev);
            return NULL;
        }
    }
    return ev;
}

static vigil_status explain_window(vigil_engine *eng, const vrule *r, const vkeystate *ks, vwin *w,
                                   vigil_explain_rule *out, void **owned) {
    int na = r->nagg;
    vigil_value *cur = calloc((size_t)(na ? na : 1), sizeof *cur), *prior = calloc((size_t)(na ? na : 1), sizeof *prior);
    vigil_explain_value *aggs = calloc((size_t)(2 * na + 1), sizeof *aggs);
    char (*atext)[TEXT] = calloc((size_t)(2 * na + 1), sizeof *atext);
    int *isnew = calloc((size_t)(na ? na : 1), sizeof *isnew);
    operands o = {.cap = 32};
    o.v = calloc((size_t)o.cap, sizeof *o.v);
    o.text = calloc((size_t)o.cap, sizeof *o.text);
    owned[0] = cur, owned[1] = prior, owned[2] = aggs, owned[3] = atext, owned[4] = isnew, owned[5] = o.v;
    owned[6] = o.text;
    if (!cur || !prior || !aggs || !atext || !isnew || !o.v || !o.text) return VIGIL_ENOMEM;
    out->has_window = 1;
    out->last_alert = w->alerted ? w->last_alert_ts : INT64_MIN;
    out->suppressed_until = w->alerted && r->suppress_ms ? w->last_alert_ts + r->suppress_ms : INT64_MIN;
    vwtail *t = vwin_tail(w, r);
    if (t) {
        out->open = w->open;
        out->start = w->open ? t->win_start : INT64_MIN;
        out->end = w->open ? w->win_end : INT64_MIN;
    } else {
        out->start = ks->last_ts - r->window_ms;
        out->end = ks->last_ts;
    }
    out->entries = vwin_events(w, r);
    vwin_values(w, r, cur, prior);
    int n = 0;
    for (int k = 0; k < na; k++) {   /* every aggregate, as the rule language writes it */
        const vagg *a = &r->aggs[k];
        char f[TEXT - 40] = "";
        if (a->filter) vexpr_text(a->filter, f, sizeof f);
        static const char *kn[] = {"count", "sum", "avg", "min", "max", "distinct"};
        const char *path = a->field >= 0 ? eng->rs->fields[a->field] : "";
        if (a->is_new) snprintf(atext[n], TEXT, "is_new(\"%s\")", path);
        else if (a->kind == VIGIL_AGG_COUNT) snprintf(atext[n], TEXT, "count(%s)", f);
        else snprintf(atext[n], TEXT, "%s(\"%s\"%s%s)", kn[a->kind], path, f[0] ? ", " : "", f);
        aggs[n] = (vigil_explain_value){.expr = atext[n], .value = cur[k]};
        n++;
        if (a->is_new) continue;
        char base[TEXT];
        memcpy(base, atext[n - 1], TEXT);
        snprintf(atext[n], TEXT, "prior(%.*s)", TEXT - 10, base);
        aggs[n] = (vigil_explain_value){.expr = atext[n], .value = prior[k]};
        n++;
    }
    out->aggs = aggs;
    out->naggs = n;
    /* `when` with the window as it is, and the key's last event when the
     * window keeps it (tumbling/session); a sliding window keeps no event,
     * but its newest entry may hold every field `when` reads (recover_last) */
    vigil_event *rebuilt = t ? NULL : recover_last(eng, r, w);
    owned[7] = rebuilt;
    const vigil_event *last = t ? t->last : rebuilt;
    int fields = reads_fields(r->when);
    veval c = {.ev = last, .rule = r, .aggs = cur, .prior = prior, .is_new = isnew, .eng = eng};
    if (fields && !last) {
        out->when = -1;
    } else {
        vigil_event none = {.nslots = 0};
        if (!c.ev) c.ev = &none;
        out->when = vexpr_true(r->when, &c);
    }
    vigil_event none = {.nslots = 0};
    if (!c.ev) c.ev = &none;
    collect(r->when, &c, last != NULL, &o);
    out->operands = o.v;
    out->noperands = o.n;
    return VIGIL_OK;
}

vigil_status vigil_engine_explain_key(vigil_engine *eng, int g, const char *key, size_t len, vigil_explain_fn fn,
                                      void *ud, vigil_error *err) {
    if (g < 0 || g >= eng->rs->ngroups) return vigil_error_set(err, VIGIL_EINVAL, "no key group %d", g);
    vkeystate *ks = veng_key(eng, g, key, len, 0);
    if (!ks) return vigil_error_set(err, VIGIL_ENOTFOUND, "no state for this key");
    const vgroup *gr = &eng->rs->groups[g];
    vigil_status st = VIGIL_OK;
    for (int i = 0; i < gr->nrules && st == VIGIL_OK; i++) {
        const vrule *r = &eng->rs->rules[gr->rules[i]];
        vigil_explain_rule out = {.rule = gr->rules[i], .last_alert = INT64_MIN, .suppressed_until = INT64_MIN,
                                  .start = INT64_MIN, .end = INT64_MIN, .when = 0};
        void *owned[8] = {0};
        if (r->nsteps) {
            st = explain_pattern(r, ks->rs[i], &out, owned);
        } else if (ks->rs[i]) {
            st = explain_window(eng, r, ks, ks->rs[i], &out, owned);
        }
        if (st == VIGIL_OK) fn(ud, &out);
        for (int k = 0; k < 7; k++) free(owned[k]);
        vigil_event_release(owned[7]);   /* the last event rebuilt from a sliding window's newest entry */
    }
    if (st != VIGIL_OK) return vigil_error_set(err, st, "out of memory explaining a key");
    return VIGIL_OK;
}

vigil_status vigil_engine_prefetch_key(vigil_engine *eng, int g, const char *key, size_t len, vigil_error *err) {
    if (!eng->store || g < 0 || g >= eng->rs->ngroups || veng_key(eng, g, key, len, 0)) return VIGIL_OK;
    vigil_event *ev = vev_new(0, eng->rs->ngroups);
    if (!ev) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    ev->keys[g] = (vkey){.s = key, .len = (uint32_t)len};
    ev->id = "";
    int groups = g;
    vigil_status st = vigil_engine_prefetch(eng, &ev, &groups, 1, err);
    ev->keys[g] = (vkey){0};
    vigil_event_release(ev);
    return st;
}

const vigil_ruleset *vigil_engine_ruleset(const vigil_engine *eng) { return eng->rs; }
