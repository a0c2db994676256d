/* test_state.c — bounded state: idle keys expire once nothing can still
 * need them (and come back as new), runs without `within` and running
 * suppressions keep their key, and bucketed sliding windows (precision)
 * stay within their stated error bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "vigil/engine.h"
#include "vigil/rules.h"

typedef struct got { int n; char last[256]; } got;

static void on_alert(void *ud, const vigil_alert *a) {
    got *g = ud;
    g->n++;
    snprintf(g->last, sizeof g->last, "%s", a->details_json);
}

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

static void feed(vigil_engine *eng, vigil_ruleset *rs, const char *key, int64_t ts_s, const char *type, double amount) {
    char js[256];
    static int id;
    snprintf(js, sizeof js, "{\"id\":\"e%d\",\"k\":\"%s\",\"ts\":%lld,\"type\":\"%s\",\"amount\":%g}", ++id, key,
             (long long)ts_s, type, amount);
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
}

static uint64_t keys(vigil_engine *eng, uint64_t *expired) {
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    if (expired) *expired = st.keys_expired;
    return st.keys;
}

/* 5,000 keys with one event each at t = 0..; a 1 h window. Two hours later
 * a stream over other keys sweeps them out; a returning key starts empty. */
static void test_idle_keys_expire(void) {
    vigil_ruleset *rs = load("rule{name='v',key='k',window=sliding('1h'),when=ge(count(),2)}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "old%d", i);
        feed(eng, rs, k, i / 10, "tx", 1);
    }
    uint64_t expired;
    CU_ASSERT_EQUAL(keys(eng, &expired), 5000);
    CU_ASSERT_EQUAL(expired, 0);
    /* 30 minutes later: still inside the window, nothing may go */
    for (int i = 0; i < 20000; i++) feed(eng, rs, "busy", 1800 + i / 100, "tx", 1);
    CU_ASSERT_EQUAL(keys(eng, &expired), 5001);
    CU_ASSERT_EQUAL(expired, 0);
    /* two hours later the old keys are past every window */
    for (int i = 0; i < 20000; i++) feed(eng, rs, "busy", 7200 + i / 100, "tx", 1);
    CU_ASSERT(keys(eng, &expired) <= 2);
    CU_ASSERT(expired >= 4999);
    /* a returning key is new: one event is not two */
    int before = g.n;
    feed(eng, rs, "old7", 7500, "tx", 1);
    CU_ASSERT_EQUAL(g.n, before);
    feed(eng, rs, "old7", 7501, "tx", 1);
    CU_ASSERT_EQUAL(g.n, before + 1);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* A pattern without `within` keeps its runs (FlinkCEP does too); with
 * `within` the runs end and the key goes. A running suppression keeps its
 * key: a duplicate must not get out after the key came back. */
static void test_what_keeps_a_key(void) {
    vigil_ruleset *rs = load("rule{name='open',key='k',pattern=begin('a'):where{type='a'}:followed_by('b'):where{type='b'}}\n"
                             "rule{name='timed',key='k',within='1m',pattern=begin('a'):where{type='c'}:followed_by('b'):where{type='b'}}\n"
                             "rule{name='sup',key='k',window=sliding('1m'),where={type='s'},when=ge(count(),1),suppress='1d'}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "runs", 0, "a", 1);      /* a run of 'open', forever */
    feed(eng, rs, "timed", 0, "c", 1);     /* a run of 'timed', one minute */
    feed(eng, rs, "quiet", 0, "x", 1);     /* no state at all */
    feed(eng, rs, "sup", 0, "s", 1);       /* alerts, suppressed for a day */
    CU_ASSERT_EQUAL(g.n, 1);
    for (int i = 0; i < 20000; i++) feed(eng, rs, "busy", 3600 + i / 10, "x", 1);
    uint64_t expired;
    keys(eng, &expired);
    CU_ASSERT_EQUAL(expired, 2);           /* "timed" and "quiet" */
    feed(eng, rs, "runs", 6000, "b", 1);   /* the run of 'open' is still there */
    CU_ASSERT_EQUAL(g.n, 2);
    feed(eng, rs, "sup", 6001, "s", 1);    /* still suppressed */
    CU_ASSERT_EQUAL(g.n, 2);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* sliding('1h', {precision='10m'}): counts and sums by 10-minute buckets.
 * The window then spans at most precision - 1 ms more than (t - 1h, t]:
 * never fewer events than the exact window, at most one bucket more. */
static void test_precision_bound(void) {
    vigil_ruleset *exact = load("rule{name='w',key='k',window=sliding('1h'),when=ge(count(),0)}");
    vigil_ruleset *buck = load("rule{name='w',key='k',window=sliding('1h',{precision='10m'}),when=ge(count(),0)}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(exact);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buck);
    got ge = {0}, gb = {0};
    vigil_engine *e1 = vigil_engine_create(exact, NULL, NULL, on_alert, &ge);
    vigil_engine *e2 = vigil_engine_create(buck, NULL, NULL, on_alert, &gb);
    unsigned seed = 7;
    int64_t t = 0;
    int worse = 0, over = 0;
    for (int i = 0; i < 3000; i++) {
        seed = seed * 1103515245u + 12345u;
        t += (seed >> 16) % 240;   /* 0..4 minutes apart */
        feed(e1, exact, "k", t, "tx", 1);
        feed(e2, buck, "k", t, "tx", 1);
        double c1 = 0, c2 = 0;
        CU_ASSERT_EQUAL_FATAL(sscanf(strstr(ge.last, "\"count()\":"), "\"count()\":%lf", &c1), 1);
        CU_ASSERT_EQUAL_FATAL(sscanf(strstr(gb.last, "\"count()\":"), "\"count()\":%lf", &c2), 1);
        if (c2 < c1) worse++;
        if (c2 > c1) over++;
        /* at most the events of the 10 minutes before the window: with
         * gaps of 0..4 minutes that is a handful */
        CU_ASSERT(c2 - c1 <= 10 * 60 / 1 + 1);
    }
    CU_ASSERT_EQUAL(worse, 0);   /* never misses an event of the exact window */
    CU_ASSERT(over > 0);         /* and is indeed approximate */
    vigil_engine_destroy(e1);
    vigil_engine_destroy(e2);
    vigil_ruleset_release(exact);
    vigil_ruleset_release(buck);
}

/* precision is refused where it cannot hold: distinct() and is_new(). */
static void test_precision_refused(void) {
    const char *src = "rule{name='d',key='k',window=sliding('30d',{precision='1h'}),when=ge(distinct('device'),3)}";
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0;
    CU_ASSERT_NOT_EQUAL(vigil_rules_load_string("p.lua", src, strlen(src), NULL, &rs, errs, 2, &nerrs), VIGIL_OK);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT(nerrs == 1 && strstr(errs[0].msg, "exact window") != NULL);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("state", NULL, NULL);
    CU_add_test(s, "idle keys expire and come back new", test_idle_keys_expire);
    CU_add_test(s, "runs without within and suppressions keep a key", test_what_keeps_a_key);
    CU_add_test(s, "precision: bucketed sliding window within its bound", test_precision_bound);
    CU_add_test(s, "precision refused with distinct/is_new", test_precision_refused);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
