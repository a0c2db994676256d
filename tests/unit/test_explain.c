/* test_explain.c — vigil_engine_explain_key reports what the events fed
 * imply: a sliding window's entries, aggregates now and as prior(…), the
 * operands of `when` (an operand on the current event is unknown: a sliding
 * window keeps no event); a tumbling window's bounds and `when` over its
 * last event; a pattern's partial matches (step reached, events, started,
 * expires); the last alert and the suppression; ENOTFOUND for a key with
 * no state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "vigil/engine.h"
#include "vigil/rules.h"

#define T0 1700000040000LL   /* event times below are ms after this (a whole minute: tumbling bounds) */

static vigil_ruleset *load(const char *src) {
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0;
    if (vigil_rules_load_string("t.lua", src, strlen(src), NULL, &rs, errs, 2, &nerrs) != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&errs[0], buf, sizeof buf);
        fprintf(stderr, "\n  compile error: %s\n", buf);
    }
    return rs;
}

static void feed(vigil_engine *eng, vigil_ruleset *rs, const char *id, const char *k, int64_t ts_ms, const char *type,
                 double amount) {
    char js[256];
    snprintf(js, sizeof js, "{\"id\":\"%s\",\"k\":\"%s\",\"ts\":%lld,\"type\":\"%s\",\"amount\":%g}", id, k,
             (long long)(T0 + ts_ms), type, amount);
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
}

/* What the callback saw, copied out. */
typedef struct seen {
    int n;
    struct {
        char name[64];
        int has_window, open, when, nruns, naggs, noperands;
        int64_t start, end, last_alert, suppressed;
        uint64_t entries;
        char aggs[8][96];
        vigil_value aggv[8];
        char ops[8][96];
        vigil_value opv[8];
        char run_step[4][32], run_events[4][64];
        int64_t run_started[4], run_expires[4];
    } r[4];
    const vigil_ruleset *rs;
} seen;

static void on_rule(void *ud, const vigil_explain_rule *e) {
    seen *s = ud;
    if (s->n >= 4) return;
    typeof(s->r[0]) *o = &s->r[s->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", vigil_ruleset_rule_name(s->rs, e->rule));
    o->has_window = e->has_window;
    o->open = e->open;
    o->when = e->when;
    o->start = e->start;
    o->end = e->end;
    o->entries = e->entries;
    o->last_alert = e->last_alert;
    o->suppressed = e->suppressed_until;
    o->naggs = e->naggs;
    for (int i = 0; i < e->naggs && i < 8; i++) {
        snprintf(o->aggs[i], sizeof o->aggs[i], "%s", e->aggs[i].expr);
        o->aggv[i] = e->aggs[i].value;
    }
    o->noperands = e->noperands;
    for (int i = 0; i < e->noperands && i < 8; i++) {
        snprintf(o->ops[i], sizeof o->ops[i], "%s", e->operands[i].expr);
        o->opv[i] = e->operands[i].value;
    }
    o->nruns = e->nruns;
    for (int i = 0; i < e->nruns && i < 4; i++) {
        snprintf(o->run_step[i], sizeof o->run_step[i], "%s", e->runs[i].step);
        for (int j = 0; j < e->runs[i].nevents; j++) {
            strncat(o->run_events[i], e->runs[i].events[j], sizeof o->run_events[i] - strlen(o->run_events[i]) - 2);
            strcat(o->run_events[i], " ");
        }
        o->run_started[i] = e->runs[i].started;
        o->run_expires[i] = e->runs[i].expires;
    }
}

static int find(const seen *s, const char *label, const char (*names)[96], int n) {
    (void)s;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], label) == 0) return i;
    return -1;
}

static void test_sliding_window(void) {
    vigil_ruleset *rs = load(
        "rule{name='spike',key='k',where={type='tx'},window=sliding('1h'),suppress='10m',"
        "when=all_of{ge(prior(count()),2),gt(e.amount,2*prior(avg('amount')))}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, NULL, NULL);
    feed(eng, rs, "e1", "a", 1000, "tx", 10);
    feed(eng, rs, "e2", "a", 2000, "tx", 20);
    feed(eng, rs, "e3", "a", 3000, "login", 999);   /* not in the window (where) */
    feed(eng, rs, "e4", "a", 4000, "tx", 90);       /* 90 > 2 * 15: alerts */
    seen s = {.rs = rs};
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_engine_explain_key(eng, 0, "a", 1, on_rule, &s, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 1);
    CU_ASSERT(s.r[0].has_window);
    CU_ASSERT_EQUAL(s.r[0].entries, 3);
    CU_ASSERT_EQUAL(s.r[0].end, T0 + 4000);
    CU_ASSERT_EQUAL(s.r[0].start, T0 + 4000 - 3600000);
    int c = find(&s, "count()", s.r[0].aggs, s.r[0].naggs), pc = find(&s, "prior(count())", s.r[0].aggs, s.r[0].naggs);
    int pa = find(&s, "prior(avg(\"amount\"))", s.r[0].aggs, s.r[0].naggs);
    CU_ASSERT_FATAL(c >= 0 && pc >= 0 && pa >= 0);
    CU_ASSERT_EQUAL(s.r[0].aggv[c].u.num, 3);
    CU_ASSERT_EQUAL(s.r[0].aggv[pc].u.num, 2);
    CU_ASSERT_DOUBLE_EQUAL(s.r[0].aggv[pa].u.num, 15, 1e-9);
    /* e.amount: a sliding window keeps no event, but avg("amount")'s newest entry holds it */
    CU_ASSERT_EQUAL(s.r[0].when, 1);   /* 90 > 2 * 15, as at the last event */
    int op_amount = find(&s, "amount", s.r[0].ops, s.r[0].noperands);
    int op_prod = find(&s, "2 * prior(avg(\"amount\"))", s.r[0].ops, s.r[0].noperands);
    CU_ASSERT_FATAL(op_amount >= 0 && op_prod >= 0);
    CU_ASSERT_EQUAL(s.r[0].opv[op_amount].type, VIGIL_T_NUM);
    CU_ASSERT_DOUBLE_EQUAL(s.r[0].opv[op_amount].u.num, 90, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s.r[0].opv[op_prod].u.num, 30, 1e-9);
    CU_ASSERT_EQUAL(s.r[0].last_alert, T0 + 4000);
    CU_ASSERT_EQUAL(s.r[0].suppressed, T0 + 4000 + 600000);
    CU_ASSERT_EQUAL(vigil_engine_explain_key(eng, 0, "nobody", 6, on_rule, &s, &err), VIGIL_ENOTFOUND);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    /* a field no aggregate keeps: `when` cannot be known between events */
    rs = load("rule{name='t',key='k',where={type='tx'},window=sliding('1h'),when=all_of{ge(count(),1),eq(e.type,'tx')}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    eng = vigil_engine_create(rs, NULL, NULL, NULL, NULL);
    feed(eng, rs, "f1", "a", 1000, "tx", 1);
    s = (seen){.rs = rs};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_explain_key(eng, 0, "a", 1, on_rule, &s, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(s.r[0].when, -1);
    int op_type = find(&s, "type", s.r[0].ops, s.r[0].noperands);
    CU_ASSERT(op_type >= 0 && s.r[0].opv[op_type].type == VIGIL_T_MISSING);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_tumbling_and_pattern(void) {
    vigil_ruleset *rs = load(
        "rule{name='tum',key='k',window=tumbling('1m'),when=ge(count(),3)}\n"
        "rule{name='seq',key='k',pattern=begin('a'):where{type='a'}:followed_by('b'):where{type='b'}"
        ":followed_by('c'):where{type='c'},within='10m'}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, NULL, NULL);
    feed(eng, rs, "x1", "a", 61000, "a", 1);
    feed(eng, rs, "x2", "a", 62000, "b", 1);
    seen s = {.rs = rs};
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_engine_explain_key(eng, 0, "a", 1, on_rule, &s, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(s.n, 2);
    int t = strcmp(s.r[0].name, "tum") == 0 ? 0 : 1, p = 1 - t;
    CU_ASSERT(s.r[t].open);
    CU_ASSERT_EQUAL(s.r[t].start, T0 + 60000);
    CU_ASSERT_EQUAL(s.r[t].end, T0 + 120000);
    CU_ASSERT_EQUAL(s.r[t].entries, 2);
    CU_ASSERT_EQUAL(s.r[t].when, 0);   /* 2 < 3 */
    CU_ASSERT_EQUAL(s.r[t].last_alert, INT64_MIN);
    CU_ASSERT_EQUAL(s.r[p].nruns, 1);
    CU_ASSERT_STRING_EQUAL(s.r[p].run_step[0], "b");
    CU_ASSERT_STRING_EQUAL(s.r[p].run_events[0], "x1 x2 ");
    CU_ASSERT_EQUAL(s.r[p].run_started[0], T0 + 61000);
    CU_ASSERT_EQUAL(s.r[p].run_expires[0], T0 + 61000 + 600000);
    feed(eng, rs, "x3", "a", 63000, "c", 1);   /* completes the run; 3 in the window */
    s.n = 0;
    CU_ASSERT_EQUAL_FATAL(vigil_engine_explain_key(eng, 0, "a", 1, on_rule, &s, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(s.r[p].nruns, 0);
    CU_ASSERT_EQUAL(s.r[p].last_alert, T0 + 63000);
    CU_ASSERT_EQUAL(s.r[t].when, 1);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("explain", NULL, NULL);
    CU_add_test(s, "sliding window: entries, aggregates, operands, alert, suppression", test_sliding_window);
    CU_add_test(s, "tumbling window and pattern runs", test_tumbling_and_pattern);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
