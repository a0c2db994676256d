/* test_functions.c — Lua functions at match time (lua/src/host.c):
 * `:where(function(e, m) … end)` predicates and `alert = function(m) … end`
 * (DESIGN.md §4). Each test compiles a rule with lua/, feeds JSON events to
 * real engines and checks the alerts: which events matched, the details an
 * alert function added, and that a failing function (error, endless loop, m
 * kept past its call, rule{} called at match time) is false, counted in
 * stats.function_errors and never stops the engine. Also: each engine has
 * its own Lua state (a closure's counter is per engine), and two engines on
 * two threads run the same functions at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include "vigil/engine.h"
#include "vigil/rules.h"

typedef struct got {
    char ids[2048];               /* "1,3|4,5" */
    char details[8][512];         /* details of the first alerts */
    int n;
} got;

static void on_alert(void *ud, const vigil_alert *a) {
    got *g = ud;
    size_t off = strlen(g->ids);
    if (g->n) off += (size_t)snprintf(g->ids + off, sizeof g->ids - off, "|");
    for (int i = 0; i < a->nevents; i++)
        off += (size_t)snprintf(g->ids + off, sizeof g->ids - off, "%s%s", i ? "," : "", a->events[i]);
    if (g->n < 8) snprintf(g->details[g->n], sizeof g->details[0], "%s", a->details_json);
    g->n++;
}

static vigil_ruleset *compile(const char *src, char *err, size_t errlen) {
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0;
    if (err) err[0] = '\0';
    if (vigil_rules_load_string("fn.lua", src, strlen(src), NULL, &rs, errs, 2, &nerrs) != VIGIL_OK) {
        if (err && nerrs) vigil_error_format(&errs[0], err, errlen);
        return NULL;
    }
    return rs;
}

/* Feed NDJSON lines to eng. */
static void feed(vigil_engine *eng, vigil_ruleset *rs, const char *lines) {
    vigil_decode_opts o;
    memset(&o, 0, sizeof o);
    o.time_format = VIGIL_TIME_S;
    const char *p = lines;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        vigil_event *ev = NULL;
        vigil_error e;
        CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, &o, p, len, NULL, 0, &ev, &e), VIGIL_OK);
        CU_ASSERT(vigil_engine_feed(eng, ev, &e) == VIGIL_OK);
        vigil_event_release(ev);
        p += len + (nl ? 1 : 0);
    }
}

/* Compile src, feed the events to one engine; returns the function errors. */
static uint64_t run(const char *src, const char *events, got *g) {
    memset(g, 0, sizeof *g);
    char err[512];
    vigil_ruleset *rs = compile(src, err, sizeof err);
    if (!rs) fprintf(stderr, "compile: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(eng);
    feed(eng, rs, events);
    vigil_engine_advance(eng, INT64_MAX);
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    return st.function_errors;
}

static const char *LOGIN_TX =
    "{\"id\":\"1\",\"type\":\"login\",\"k\":\"a\",\"ts\":1,\"country\":\"FR\",\"geo\":{\"lat\":48.8}}\n"
    "{\"id\":\"2\",\"type\":\"tx\",\"k\":\"a\",\"ts\":2,\"country\":\"FR\",\"amount\":10}\n"
    "{\"id\":\"3\",\"type\":\"tx\",\"k\":\"a\",\"ts\":3,\"country\":\"US\",\"amount\":900}\n"
    "{\"id\":\"4\",\"type\":\"login\",\"k\":\"b\",\"ts\":4,\"country\":\"DE\"}\n"
    "{\"id\":\"5\",\"type\":\"tx\",\"k\":\"b\",\"ts\":5,\"country\":\"DE\",\"amount\":900}\n";

static void test_predicate_sees_event_and_match(void) {
    got g;
    uint64_t errs = run(
        "local function other_country(e, first) return e.country ~= first.country end\n"
        "rule{ name = 'r', key = 'k', skip = 'no_skip',\n"
        "  pattern = begin('login'):where{ type = 'login' }\n"
        "    :followed_by_any('tx'):where(function(e, m)\n"
        "       return e.type == 'tx' and other_country(e, m.login[1]) and #m.events == 1\n"
        "           and m.login[1].geo.lat > 48 end) }\n",
        LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 0);
    CU_ASSERT_STRING_EQUAL(g.ids, "1,3");
}

static void test_predicate_with_where_and_or_where(void) {
    got g;
    /* where{} AND function, then OR another function: FlinkCEP folds left to right */
    run("rule{ name = 'r', key = 'k', skip = 'no_skip',\n"
        "  pattern = begin('x'):where{ type = 'tx' }:where(function(e) return e.amount > 100 end)\n"
        "    :or_where(function(e) return e.type == 'login' and e.country == 'DE' end) }\n",
        LOGIN_TX, &g);
    CU_ASSERT_STRING_EQUAL(g.ids, "3|4|5");
}

static void test_alert_function_details(void) {
    got g;
    uint64_t errs = run(
        "rule{ name = 'r', key = 'k',\n"
        "  pattern = begin('login'):where{ type = 'login' }:followed_by('tx'):where{ type = 'tx', amount = gt(500) },\n"
        "  alert = function(m) return { amount = m.tx[1].amount, route = { m.login[1].country, m.tx[1].country },\n"
        "                                steps = 'mine', ok = true } end }\n",
        LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 0);
    CU_ASSERT_STRING_EQUAL(g.ids, "1,3|4,5");
    /* the function's members are added to the details; its own `steps` wins over the built-in one */
    for (int i = 0; i < 2; i++) {
        cJSON *d = cJSON_Parse(g.details[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        CU_ASSERT_EQUAL(cJSON_GetArraySize(d), 4);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(d, "steps")), "mine");
        CU_ASSERT_EQUAL(cJSON_GetNumberValue(cJSON_GetObjectItem(d, "amount")), 900);
        CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(d, "ok")));
        char *route = cJSON_PrintUnformatted(cJSON_GetObjectItem(d, "route"));
        CU_ASSERT_STRING_EQUAL(route, i ? "[\"DE\",\"DE\"]" : "[\"FR\",\"US\"]");
        free(route);
        cJSON_Delete(d);
    }
}

static void test_alert_function_nil_and_bad(void) {
    got g;
    uint64_t errs = run("rule{ name = 'r', key = 'k', pattern = begin('t'):where{ type = 'login' },\n"
                        "  alert = function(m) return nil end }\n",
                        LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 0);
    CU_ASSERT_EQUAL(g.n, 2);
    CU_ASSERT_STRING_EQUAL(g.details[0], "{\"steps\":{\"t\":1}}");
    /* a list, a function value: the alert still goes out with the built-in details */
    errs = run("rule{ name = 'r', key = 'k', pattern = begin('t'):where{ type = 'login' },\n"
               "  alert = function(m) if m.t[1].country == 'FR' then return { 1, 2 } end return { f = tostring } end }\n",
               LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 2);
    CU_ASSERT_EQUAL(g.n, 2);
    CU_ASSERT_STRING_EQUAL(g.details[0], "{\"steps\":{\"t\":1}}");
    CU_ASSERT_STRING_EQUAL(g.details[1], "{\"steps\":{\"t\":1}}");
}

static void test_failing_predicates_are_false_and_counted(void) {
    got g;
    /* a runtime error on event 2 only: false there, the others still match */
    uint64_t errs = run("rule{ name = 'r', key = 'k', pattern = begin('t'):where(function(e)\n"
                        "  if e.id == '2' then error('boom') end return e.type == 'tx' end) }\n",
                        LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 1);
    CU_ASSERT_STRING_EQUAL(g.ids, "3|5");
    /* an endless loop: the call's budget stops it; the next event is matched as usual */
    errs = run("rule{ name = 'r', key = 'k', pattern = begin('t'):where(function(e)\n"
               "  if e.id == '3' then while true do end end return e.type == 'tx' end) }\n",
               LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 1);
    CU_ASSERT_STRING_EQUAL(g.ids, "2|5");
    /* an unknown step name in m raises (a typo is not silently nil) */
    errs = run("rule{ name = 'r', key = 'k', pattern = begin('a'):where{ type = 'login' }\n"
               "  :followed_by('b'):where(function(e, m) return m.logon ~= nil end) }\n",
               LOGIN_TX, &g);
    CU_ASSERT(errs >= 2);
    CU_ASSERT_EQUAL(g.n, 0);
    /* m kept past its call raises when used later */
    errs = run("local kept\n"
               "rule{ name = 'r', key = 'k', pattern = begin('t'):where(function(e, m)\n"
               "  if kept then local x = kept.t end kept = m return true end) }\n",
               LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 4);
    CU_ASSERT_STRING_EQUAL(g.ids, "1");
    /* rule{} at match time is refused */
    errs = run("rule{ name = 'r', key = 'k', pattern = begin('t'):where(function(e)\n"
               "  rule{ name = 'x', key = 'k', pattern = begin('y') } return true end) }\n",
               LOGIN_TX, &g);
    CU_ASSERT_EQUAL(errs, 5);
    CU_ASSERT_EQUAL(g.n, 0);
}

static void test_compile_errors(void) {
    char err[512];
    CU_ASSERT_PTR_NULL(compile("rule{ name = 'w', key = 'k', where = function(e) return true end,\n"
                               "  window = sliding('1h'), when = ge(count(), 2) }\n", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "pattern steps"));
    CU_ASSERT_PTR_NULL(compile("rule{ name = 'r', key = 'k', pattern = begin('a'):where{ amount = function() end } }\n",
                               err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "whole step condition"));
    CU_ASSERT_PTR_NULL(compile("rule{ name = 'r', key = 'k', pattern = begin('a'), alert = 5 }\n", err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "alert must be a function"));
}

/* Every engine has its own Lua state: a counter in a closure counts per engine. */
static void test_instances_are_separate(void) {
    const char *src = "local n = 0\n"
                      "rule{ name = 'r', key = 'k', pattern = begin('t'):where(function(e) n = n + 1 return n == 2 end) }\n";
    vigil_ruleset *rs = compile(src, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    got ga, gb;
    memset(&ga, 0, sizeof ga);
    memset(&gb, 0, sizeof gb);
    vigil_engine *a = vigil_engine_create(rs, NULL, NULL, on_alert, &ga);
    vigil_engine *b = vigil_engine_create(rs, NULL, NULL, on_alert, &gb);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    feed(a, rs, "{\"id\":\"1\",\"k\":\"a\",\"ts\":1}\n{\"id\":\"2\",\"k\":\"a\",\"ts\":2}\n");
    feed(b, rs, "{\"id\":\"3\",\"k\":\"a\",\"ts\":1}\n");
    CU_ASSERT_STRING_EQUAL(ga.ids, "2");
    CU_ASSERT_EQUAL(gb.n, 0);
    feed(b, rs, "{\"id\":\"4\",\"k\":\"a\",\"ts\":2}\n");
    CU_ASSERT_STRING_EQUAL(gb.ids, "4");
    vigil_engine_destroy(a);
    vigil_engine_destroy(b);
    vigil_ruleset_release(rs);
}

typedef struct worker {
    vigil_ruleset *rs;
    int alerts;
} worker;

static void count_alert(void *ud, const vigil_alert *a) {
    (void)a;
    ((worker *)ud)->alerts++;
}

static void *work(void *arg) {
    worker *w = arg;
    vigil_engine *eng = vigil_engine_create(w->rs, NULL, NULL, count_alert, w);
    if (!eng) return NULL;
    vigil_decode_opts o;
    memset(&o, 0, sizeof o);
    o.time_format = VIGIL_TIME_S;
    for (int i = 0; i < 20000; i++) {
        char line[160];
        int n = snprintf(line, sizeof line, "{\"id\":\"%d\",\"k\":\"k%d\",\"ts\":%d,\"amount\":%d,\"type\":\"%s\"}", i,
                         i % 50, i, (i * 37) % 1000, i % 3 ? "tx" : "login");
        vigil_event *ev = NULL;
        vigil_error e;
        if (vigil_event_decode_json(w->rs, &o, line, (size_t)n, NULL, 0, &ev, &e) != VIGIL_OK) break;
        vigil_engine_feed(eng, ev, &e);
        vigil_event_release(ev);
    }
    vigil_engine_destroy(eng);
    return NULL;
}

static void test_two_threads(void) {
    vigil_ruleset *rs = compile(
        "rule{ name = 'r', key = 'k', within = '1h',\n"
        "  pattern = begin('l'):where{ type = 'login' }\n"
        "    :followed_by('t'):where(function(e, m) return e.type == 'tx' and e.amount > 900 end),\n"
        "  alert = function(m) return { amount = m.t[1].amount } end }\n",
        NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    worker w[2] = {{rs, 0}, {rs, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CU_ASSERT_EQUAL(pthread_create(&t[i], NULL, work, &w[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CU_ASSERT(w[0].alerts > 0);
    CU_ASSERT_EQUAL(w[0].alerts, w[1].alerts);
    vigil_ruleset_release(rs);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("lua functions", NULL, NULL);
    CU_add_test(s, "predicate sees e and m", test_predicate_sees_event_and_match);
    CU_add_test(s, "predicate with where{} and or_where", test_predicate_with_where_and_or_where);
    CU_add_test(s, "alert function adds details", test_alert_function_details);
    CU_add_test(s, "alert function: nil, a list, a bad value", test_alert_function_nil_and_bad);
    CU_add_test(s, "failing predicates: false, counted, engine goes on", test_failing_predicates_are_false_and_counted);
    CU_add_test(s, "compile errors", test_compile_errors);
    CU_add_test(s, "one Lua state per engine", test_instances_are_separate);
    CU_add_test(s, "two engines on two threads", test_two_threads);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
