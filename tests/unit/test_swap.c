/* test_swap.c — an engine switching rulesets between two feeds (hot reload,
 * DESIGN.md §6): a compatible window version inherits the window's contents,
 * an incompatible one starts empty, an old pattern version drains (its runs
 * complete under it, it starts none), a compatible pattern keeps its runs,
 * state stored under an old version loads into the version that inherits
 * it, events held for max_out_of_orderness survive a swap that adds
 * fields, and a ruleset that does not descend from the running one is
 * refused. Rulesets are built the way the server builds them
 * (vigil_rules_build with picks, over the running one as base). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "vigil/engine.h"
#include "vigil/rules.h"
#include "record.h"

#define MAXA 16
typedef struct got {
    int n;
    int version[MAXA];
    char details[MAXA][256];
    char events[MAXA][128];
} got;

static void on_alert(void *ud, const vigil_alert *a) {
    got *g = ud;
    if (g->n < MAXA) {
        g->version[g->n] = a->rule_version;
        snprintf(g->details[g->n], sizeof g->details[0], "%s", a->details_json);
        g->events[g->n][0] = '\0';
        for (int i = 0; i < a->nevents; i++) {
            strncat(g->events[g->n], a->events[i], sizeof g->events[0] - strlen(g->events[g->n]) - 2);
            strcat(g->events[g->n], " ");
        }
    }
    g->n++;
}

/* One source per (text, version, draining), over base. */
typedef struct part { const char *src; int version; int draining; } part;

static vigil_ruleset *build(const vigil_ruleset *base, const part *ps, int n) {
    vigil_rule_source srcs[8];
    vigil_rule_pick picks[8];
    for (int i = 0; i < n; i++) {
        vigil_rule_info info[4];
        int ni = 0;
        vigil_error e[2];
        int ne = 0;
        CU_ASSERT_EQUAL_FATAL(vigil_rules_inspect("t.lua", ps[i].src, strlen(ps[i].src), NULL, info, 4, &ni, e, 2, &ne), VIGIL_OK);
        CU_ASSERT_EQUAL_FATAL(ni, 1);
        picks[i] = (vigil_rule_pick){.name = NULL, .version = ps[i].version, .draining = ps[i].draining};
        static char names[8][64];
        snprintf(names[i], sizeof names[i], "%s", info[0].name);
        picks[i].name = names[i];
        srcs[i] = (vigil_rule_source){.file = "t.lua", .src = ps[i].src, .len = strlen(ps[i].src), .picks = &picks[i],
                                      .npicks = 1};
    }
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0;
    if (vigil_rules_build(srcs, n, base, NULL, &rs, errs, 2, &nerrs) != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&errs[0], buf, sizeof buf);
        fprintf(stderr, "\n  build error: %s\n", buf);
    }
    return rs;
}

static int seq;
static void feed(vigil_engine *eng, vigil_ruleset *rs, const char *key, int64_t ts_s, const char *type) {
    char js[256];
    snprintf(js, sizeof js, "{\"id\":\"e%d\",\"k\":\"%s\",\"ts\":%lld,\"type\":\"%s\",\"amount\":5}", ++seq, key,
             (long long)ts_s, type);
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
}

static void swap(vigil_engine *eng, vigil_ruleset **cur, vigil_ruleset *next) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_engine_swap(eng, next, &err), VIGIL_OK);
    vigil_ruleset_release(*cur);
    *cur = next;
}

#define VEL(n) "rule{name='vel',key='k',window=sliding('1h'),when=ge(count()," #n ")}"

/* 4 -> 3: the two events before the swap still count; the third alerts at once, under v2. */
static void test_compatible_window_inherits(void) {
    part p1[] = {{VEL(4), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "tx");
    feed(eng, rs, "a", 200, "tx");
    part p2[] = {{VEL(3), 2, 0}};
    vigil_ruleset *rs2 = build(rs, p2, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs2);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_inherits(rs2, 0), 1);
    swap(eng, &rs, rs2);
    CU_ASSERT_EQUAL(g.n, 0);
    feed(eng, rs, "a", 300, "tx");
    CU_ASSERT_EQUAL_FATAL(g.n, 1);
    CU_ASSERT_EQUAL(g.version[0], 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(g.details[0], "\"count()\":3"));
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* A different window size: the new version starts empty (and the old one, a
 * sliding window, has nothing to drain). */
static void test_incompatible_window_starts_empty(void) {
    part p1[] = {{VEL(4), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "tx");
    feed(eng, rs, "a", 200, "tx");
    part p2[] = {{"rule{name='vel',key='k',window=sliding('2h'),when=ge(count(),3)}", 2, 0}};
    vigil_ruleset *rs2 = build(rs, p2, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs2);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_inherits(rs2, 0), 2);
    swap(eng, &rs, rs2);
    feed(eng, rs, "a", 300, "tx");
    feed(eng, rs, "a", 400, "tx");
    CU_ASSERT_EQUAL(g.n, 0);   /* 2 events in the new window */
    feed(eng, rs, "a", 500, "tx");
    CU_ASSERT_EQUAL_FATAL(g.n, 1);
    CU_ASSERT_EQUAL(g.version[0], 2);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

#define PAT(within, sev)                                                                                         \
    "rule{name='seq',key='k',severity='" sev "',pattern=begin('a'):where{type='a'}:followed_by('b'):where{type='b'}," \
    "within='" within "'}"

/* A new `within`: the old version drains. Its run started before the swap
 * completes under v1; the new version sees only what came after; the
 * draining version starts no run of its own. */
static void test_pattern_drains(void) {
    part p1[] = {{PAT("10m", "high"), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "a");   /* e1: a run of v1 */
    part p2[] = {{PAT("10m", "high"), 1, 1}, {PAT("20m", "high"), 2, 0}};
    vigil_ruleset *rs2 = build(rs, p2, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs2);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_draining(rs2, vigil_ruleset_rule_find(rs2, "seq", 1)), 1);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_index(rs2, "seq"), vigil_ruleset_rule_find(rs2, "seq", 2));
    swap(eng, &rs, rs2);
    uint64_t live[2];
    vigil_engine_rule_live(eng, live);
    CU_ASSERT_EQUAL(live[vigil_ruleset_rule_find(rs, "seq", 1)], 1);
    int first = seq + 1;
    feed(eng, rs, "a", 200, "a");   /* a v2 run; v1 starts none */
    feed(eng, rs, "a", 300, "b");   /* completes v1's run (e1, b) and v2's (a@200, b) */
    CU_ASSERT_EQUAL_FATAL(g.n, 2);
    int v1 = g.version[0] == 1 ? 0 : 1;
    CU_ASSERT_EQUAL(g.version[v1], 1);
    CU_ASSERT_EQUAL(g.version[1 - v1], 2);
    char want[64];
    snprintf(want, sizeof want, "e%d e%d ", first - 1, first + 1);
    CU_ASSERT_STRING_EQUAL(g.events[v1], want);
    snprintf(want, sizeof want, "e%d e%d ", first, first + 1);
    CU_ASSERT_STRING_EQUAL(g.events[1 - v1], want);
    vigil_engine_rule_live(eng, live);
    CU_ASSERT_EQUAL(live[vigil_ruleset_rule_find(rs, "seq", 1)], 0);   /* drained: may retire */
    feed(eng, rs, "a", 400, "a");
    feed(eng, rs, "a", 500, "b");
    CU_ASSERT_EQUAL(g.n, 3);
    CU_ASSERT_EQUAL(g.version[2], 2);
    /* retire v1: a ruleset without it */
    part p3[] = {{PAT("20m", "high"), 2, 0}};
    vigil_ruleset *rs3 = build(rs, p3, 1);
    swap(eng, &rs, rs3);
    feed(eng, rs, "a", 600, "a");
    feed(eng, rs, "a", 700, "b");
    CU_ASSERT_EQUAL(g.n, 4);
    CU_ASSERT_EQUAL(g.version[3], 2);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* Only the severity changes: the run started under v1 completes under v2. */
static void test_compatible_pattern_keeps_runs(void) {
    part p1[] = {{PAT("10m", "high"), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "a");
    part p2[] = {{PAT("10m", "critical"), 2, 0}};
    vigil_ruleset *rs2 = build(rs, p2, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs2);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_inherits(rs2, 0), 1);
    swap(eng, &rs, rs2);
    feed(eng, rs, "a", 200, "b");
    CU_ASSERT_EQUAL_FATAL(g.n, 1);
    CU_ASSERT_EQUAL(g.version[0], 2);
    /* a changed condition is not compatible */
    part p3[] = {{"rule{name='seq',key='k',pattern=begin('a'):where{type='a', amount=gt(1)}:followed_by('b')"
                  ":where{type='b'},within='10m'}", 3, 0}};
    vigil_ruleset *rs3 = build(rs, p3, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs3);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_inherits(rs3, 0), 3);
    vigil_ruleset_release(rs3);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

typedef struct saved { unsigned char *data[8]; size_t len[8]; char key[8][16]; int n; } saved;
static int save_one(void *ud, const vigil_store_record *r) {
    saved *s = ud;
    s->data[s->n] = malloc(r->len);
    memcpy(s->data[s->n], r->data, r->len);
    s->len[s->n] = r->len;
    snprintf(s->key[s->n], sizeof s->key[0], "%.*s", (int)r->k.keylen, r->k.key);
    s->n++;
    return 0;
}

/* A record stored by v1 (a restart, a key not in the cache) loads into v3,
 * which inherits from 1 (as the catalog remembers it), and not into a
 * version that inherits nothing. */
static void test_stored_state_inherited(void) {
    part p1[] = {{VEL(4), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "tx");
    feed(eng, rs, "a", 200, "tx");
    saved sv = {0};
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(eng, save_one, &sv, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(sv.n, 1);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    for (int inherit = 0; inherit < 2; inherit++) {
        const char *src = VEL(3);
        vigil_rule_pick pk = {.name = "vel", .version = 3, .inherits = inherit ? 1 : 3};
        vigil_rule_source s = {.file = "t.lua", .src = src, .len = strlen(src), .picks = &pk, .npicks = 1};
        vigil_ruleset *r3 = NULL;
        vigil_error errs[2];
        int ne;
        CU_ASSERT_EQUAL_FATAL(vigil_rules_build(&s, 1, NULL, NULL, &r3, errs, 2, &ne), VIGIL_OK);
        got g3 = {0};
        vigil_engine *e3 = vigil_engine_create(r3, NULL, NULL, on_alert, &g3);
        vigil_status ls = vigil_engine_load_state(e3, 0, sv.key[0], strlen(sv.key[0]), sv.data[0], sv.len[0], &err);
        if (ls != VIGIL_OK) fprintf(stderr, "load_state (inherit %d): %s\n", inherit, err.msg);
        CU_ASSERT_EQUAL_FATAL(ls, VIGIL_OK);
        if (!inherit) {   /* a v3 record with an entry no rule takes loads too (the rest is dropped) */
            unsigned char v3[4096], v4[4096];
            size_t v4len = test_record_v5_to_v4(sv.data[0], sv.len[0], v4, sizeof v4);
            size_t v3len = test_record_v4_to_v3(v4, v4len, v3, sizeof v3);
            CU_ASSERT_FATAL(v3len > 0);
            CU_ASSERT_EQUAL(vigil_engine_load_state(e3, 0, "b", 1, v3, v3len, &err), VIGIL_OK);
        }
        feed(e3, r3, "a", 300, "tx");
        CU_ASSERT_EQUAL(g3.n, inherit ? 1 : 0);
        if (inherit && g3.n) CU_ASSERT_EQUAL(g3.version[0], 3);
        vigil_engine_destroy(e3);
        vigil_ruleset_release(r3);
    }
    free(sv.data[0]);
}

/* Events held for max_out_of_orderness, decoded before a swap that adds a
 * rule on a new field, are matched by the new rule set with that field. */
static void test_held_events_redecoded(void) {
    part p1[] = {{VEL(9), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine_opts o = {.max_out_of_orderness_ms = 60000};
    vigil_engine *eng = vigil_engine_create(rs, &o, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "big");
    part p2[] = {{VEL(9), 1, 0}, {"rule{name='big',key='k',window=sliding('1h'),where={amount=ge(5)},when=ge(count(),1)}", 1, 0}};
    vigil_ruleset *rs2 = build(rs, p2, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs2);
    swap(eng, &rs, rs2);
    vigil_engine_advance(eng, INT64_MAX);
    CU_ASSERT_EQUAL(g.n, 1);   /* the held event has its amount under the new field table */
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* Two swaps with no event between them: the first leaves states in the
 * graveyard (freed 8 per event afterwards), the second has nothing dead of
 * its own but must still find room for the old ruleset's reference (it
 * wrote one slot past grave_rs: found by the escape suite under ASan, a PUT
 * then a DELETE before any event). */
static void test_second_swap_before_grave_drains(void) {
    part p1[] = {{VEL(4), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        feed(eng, rs, key, 100 + i, "tx");
    }
    part p2[] = {{"rule{name='vel',key='k',window=sliding('2h'),when=ge(count(),3)}", 2, 0}};
    swap(eng, &rs, build(rs, p2, 1));    /* incompatible: 20 states to the graveyard */
    part p3[] = {{"rule{name='vel',key='k',window=sliding('2h'),when=ge(count(),2)}", 3, 0}};
    swap(eng, &rs, build(rs, p3, 1));    /* compatible: nothing dead, the graveyard still full */
    part p4[] = {{"rule{name='vel',key='k',window=sliding('2h'),when=ge(count(),1)}", 4, 0}};
    swap(eng, &rs, build(rs, p4, 1));
    feed(eng, rs, "k1", 300, "tx");
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_EQUAL(g.version[0], 4);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_unrelated_ruleset_refused(void) {
    part p1[] = {{"rule{name='x',key='q',window=sliding('1h'),where={z=1},when=ge(count(),2)}", 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    part p2[] = {{VEL(3), 1, 0}};
    vigil_ruleset *other = build(NULL, p2, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_engine_swap(eng, other, &err), VIGIL_EINVAL);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    vigil_ruleset_release(other);
}

/* Two swaps with no event between them: the first leaves the old
 * version's states in the graveyard (freed a few per event), the second
 * leaves none of its own. The second must not keep its old ruleset for a
 * graveyard it did not add to: it wrote past the list of kept rulesets (an
 * ASan heap-buffer-overflow in vigil_engine_swap, found by fuzz_http: a
 * rule PUT, then a list or another rule changed, before the next event).
 * Then the graveyard drains and the engine goes on with the new rules. */
static void test_swaps_before_the_graveyard_drains(void) {
    part p1[] = {{VEL(4), 1, 0}};
    vigil_ruleset *rs = build(NULL, p1, 1);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a", 100, "tx");
    feed(eng, rs, "b", 100, "tx");
    part p2[] = {{"rule{name='vel',key='k',window=sliding('2h'),when=ge(count(),2)}", 2, 0}};
    vigil_ruleset *rs2 = build(rs, p2, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs2);
    swap(eng, &rs, rs2);   /* v1's states of a and b: the graveyard */
    part p3[] = {{"rule{name='vel',key='k',window=sliding('2h'),when=ge(count(),2)}", 2, 0},
                 {"rule{name='other',key='j',window=sliding('1h'),when=ge(count(),1)}", 1, 0}};
    vigil_ruleset *rs3 = build(rs, p3, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs3);
    swap(eng, &rs, rs3);   /* group k unchanged: nothing of its own for the graveyard */
    part p4[] = {{"rule{name='vel',key='k',window=sliding('3h'),when=ge(count(),2)}", 3, 0},
                 {"rule{name='other',key='j',window=sliding('1h'),when=ge(count(),1)}", 1, 0}};
    vigil_ruleset *rs4 = build(rs, p4, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs4);
    swap(eng, &rs, rs4);   /* and once more with states of its own: both kinds in one graveyard */
    feed(eng, rs, "a", 200, "tx");
    CU_ASSERT_EQUAL(g.n, 0);   /* v3 starts empty */
    feed(eng, rs, "a", 300, "tx");
    CU_ASSERT_EQUAL_FATAL(g.n, 1);
    CU_ASSERT_EQUAL(g.version[0], 3);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* Rules of a source that are not picked are left out; a pick the source
 * does not define is an error. */
static void test_build_picks(void) {
    const char *src = "rule{name='a',key='k',window=sliding('1h'),when=ge(count(),2)}\n"
                      "rule{name='b',key='k',version=7,window=sliding('1h'),when=ge(count(),2)}";
    vigil_rule_info info[4];
    int n = 0, ne = 0;
    vigil_error errs[2];
    CU_ASSERT_EQUAL_FATAL(vigil_rules_inspect("f.lua", src, strlen(src), NULL, info, 4, &n, errs, 2, &ne), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(info[0].name, "a");
    CU_ASSERT_EQUAL(info[0].version, 0);
    CU_ASSERT_EQUAL(info[1].version, 7);
    CU_ASSERT_EQUAL(info[1].line, 2);
    vigil_rule_pick pk = {.name = "b", .version = 9, .mode = VIGIL_MODE_SHADOW};
    vigil_rule_source s = {.file = "f.lua", .src = src, .len = strlen(src), .picks = &pk, .npicks = 1};
    vigil_ruleset *rs = NULL;
    CU_ASSERT_EQUAL_FATAL(vigil_rules_build(&s, 1, NULL, NULL, &rs, errs, 2, &ne), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_count(rs), 1);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_version(rs, 0), 9);
    CU_ASSERT_EQUAL(vigil_ruleset_rule_mode(rs, 0), VIGIL_MODE_SHADOW);
    vigil_ruleset_release(rs);
    vigil_rule_pick missing = {.name = "c", .version = 1};
    s.picks = &missing;
    rs = NULL;
    CU_ASSERT_EQUAL(vigil_rules_build(&s, 1, NULL, NULL, &rs, errs, 2, &ne), VIGIL_ENOTFOUND);
    CU_ASSERT_PTR_NULL(rs);
    CU_ASSERT_PTR_NOT_NULL(strstr(errs[0].msg, "'c'"));
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("swap", NULL, NULL);
    CU_add_test(s, "compatible window inherits", test_compatible_window_inherits);
    CU_add_test(s, "incompatible window starts empty", test_incompatible_window_starts_empty);
    CU_add_test(s, "pattern drains", test_pattern_drains);
    CU_add_test(s, "compatible pattern keeps runs", test_compatible_pattern_keeps_runs);
    CU_add_test(s, "stored state inherited", test_stored_state_inherited);
    CU_add_test(s, "held events redecoded", test_held_events_redecoded);
    CU_add_test(s, "unrelated ruleset refused", test_unrelated_ruleset_refused);
    CU_add_test(s, "a second swap before the graveyard drains", test_second_swap_before_grave_drains);
    CU_add_test(s, "swaps before the graveyard drains", test_swaps_before_the_graveyard_drains);
    CU_add_test(s, "build picks", test_build_picks);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
