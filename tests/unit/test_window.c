/* test_window.c — distinct() and is_new() of window rules against a
 * brute-force model of the window (window.c keeps counted hash sets once a
 * window is big enough, and scans below that: both must agree with the
 * model as windows grow, shrink, empty and fill again), values compared
 * typed (1 and 1.0 are one number, "1" is text: DESIGN.md §3, no implicit
 * conversion), tumbling windows' prior(), and the window state through the
 * codec: records written before the window state was reorganised (v2) and
 * before values were typed (v4, bytes fixed below) still load, and state
 * moved between engines mid-stream changes no alert. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "record.h"
#include "vigil/engine.h"
#include "vigil/rules.h"

#define HOUR 3600

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

/* Every alert's rule and details, in order. */
#define MAXALERTS 4096
typedef struct got { int n; char rule[MAXALERTS][32]; char det[MAXALERTS][512]; } got;

static void on_alert(void *ud, const vigil_alert *a) {
    got *g = ud;
    if (g->n >= MAXALERTS) return;
    snprintf(g->rule[g->n], sizeof g->rule[0], "%s", a->rule);
    snprintf(g->det[g->n], sizeof g->det[0], "%s", a->details_json);
    g->n++;
}

/* A country value as JSON and its identity as the window compares it (its
 * type, then its text): NULL for an event without a usable value. */
typedef struct val { const char *json, *text; } val;
static const val vals[] = {
    {"\"FR\"", "sFR"}, {"\"DE\"", "sDE"}, {"\"US\"", "sUS"}, {"\"ES\"", "sES"},
    {"1", "n1"}, {"\"1\"", "s1"}, {"1.0", "n1"}, {"1e3", "n1000"}, {"\"1000\"", "s1000"},
    {"2.5", "n2.5"}, {"\"2.5\"", "s2.5"}, {"0.1", "n0.10000000000000001"}, {"\"0.1\"", "s0.1"},
    {"true", "btrue"}, {"\"true\"", "strue"}, {"false", "bfalse"},
    {"null", NULL}, {NULL, NULL},   /* JSON null; the field missing */
};
#define NVALS (int)(sizeof vals / sizeof vals[0])

typedef struct mev { long long ts; int tx; const char *text; } mev;

static void feed(vigil_engine *eng, vigil_ruleset *rs, int id, const char *key, long long ts, int tx, const val *v) {
    char js[256];
    if (v->json)
        snprintf(js, sizeof js, "{\"id\":\"e%d\",\"k\":\"%s\",\"ts\":%lld,\"type\":\"%s\",\"country\":%s}", id, key, ts,
                 tx ? "tx" : "login", v->json);
    else
        snprintf(js, sizeof js, "{\"id\":\"e%d\",\"k\":\"%s\",\"ts\":%lld,\"type\":\"%s\"}", id, key, ts,
                 tx ? "tx" : "login");
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(eng, ev, &err), VIGIL_OK);
    vigil_event_release(ev);
}

/* The model: distinct texts among w[0..n) (only tx events when tx_only). */
static int model_distinct(const mev *w, int n, int tx_only) {
    int d = 0;
    for (int i = 0; i < n; i++) {
        if (!w[i].text || (tx_only && !w[i].tx)) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = w[j].text && (!tx_only || w[j].tx) && strcmp(w[j].text, w[i].text) == 0;
        d += !seen;
    }
    return d;
}

static int model_is_new(const mev *w, int n) {   /* the last of w[0..n) */
    if (!w[n - 1].text) return 0;
    for (int i = 0; i < n - 1; i++)
        if (w[i].text && strcmp(w[i].text, w[n - 1].text) == 0) return 0;
    return 1;
}

static double num_after(const char *det, const char *label) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", label);
    const char *p = strstr(det, pat);
    if (!p) return -1;
    return strtod(p + strlen(pat), NULL);
}

static int bool_after(const char *det, const char *label) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", label);
    const char *p = strstr(det, pat);
    if (!p) return -1;
    return strncmp(p + strlen(pat), "true", 4) == 0;
}

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* A random stream for one key: gaps of 0..20 minutes, bursts of up to 40
 * events in the same minute, and now and then two hours of silence, so that
 * the window crosses the size where window.c switches between scanning and
 * its counted sets, in both directions, and empties. */
static void make_stream(mev *evs, int *vi, int n, unsigned seed, const val *pool, int npool, int maxgap) {
    long long t = 1000;
    for (int i = 0; i < n; i++) {
        unsigned r = rnd(&seed) % 100;
        if (r < 3) t += 2 * HOUR;
        else if (r < 10) {   /* a burst */
            int b = 5 + (int)(rnd(&seed) % 36);
            for (int j = 0; j < b && i < n - 1; j++, i++) {
                vi[i] = (int)(rnd(&seed) % (unsigned)npool);
                evs[i] = (mev){t, (int)(rnd(&seed) % 2), pool[vi[i]].text};
            }
        } else t += rnd(&seed) % (unsigned)maxgap;
        vi[i] = (int)(rnd(&seed) % (unsigned)npool);
        evs[i] = (mev){t, (int)(rnd(&seed) % 2), pool[vi[i]].text};
    }
}

static const char *SLIDING =
    "rule{name='d',key='k',window=sliding('1h'),"
    "when=all_of{ge(count(),0),ge(distinct('country'),0),ge(distinct('country',{type='tx'}),0),"
    "any_of{is_new('country'),ge(count(),0)}}}";

/* Check alert i (the event ev[i] and its window w[0..n), ev[i] last). */
static void check_sliding(const got *g, int a, const mev *w, int n, int i) {
    const char *det = g->det[a];
    int ok = num_after(det, "distinct(country)") == model_distinct(w, n, 0) &&
             num_after(det, "prior(distinct(country))") == model_distinct(w, n - 1, 0) &&
             num_after(det, "distinct(country) where eq(type, 'tx')") == model_distinct(w, n, 1) &&
             num_after(det, "prior(distinct(country) where eq(type, 'tx'))") == model_distinct(w, n - 1, 1) &&
             bool_after(det, "is_new(country)") == model_is_new(w, n);
    if (!ok)
        fprintf(stderr, "\n  event %d (window of %d): %s; model distinct %d prior %d filtered %d prior %d is_new %d\n",
                i, n, det, model_distinct(w, n, 0), model_distinct(w, n - 1, 0), model_distinct(w, n, 1),
                model_distinct(w, n - 1, 1), model_is_new(w, n));
    CU_ASSERT_FATAL(ok);
}

/* The window of event i: the events in (t - 1h, t] up to i. */
static int window_of(const mev *evs, int i, int *first) {
    int f = *first;
    while (evs[f].ts <= evs[i].ts - HOUR) f++;
    *first = f;
    return i - f + 1;
}

/* Sliding 1 h: distinct (plain and filtered), prior and is_new at every
 * event of a stream with entries leaving and coming back: the values above
 * (few, equal text forms), then 400 values in a denser stream (the sets
 * grow, and shrink when the window thins out). */
static void sliding_model(const val *pool, int npool, int maxgap, int minbig) {
    enum { N = 3000 };
    static mev evs[N];
    static int vi[N];
    make_stream(evs, vi, N, 42, pool, npool, maxgap);
    vigil_ruleset *rs = load(SLIDING);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static got g;
    g.n = 0;
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    int first = 0, biggest = 0, empties = 0;
    for (int i = 0; i < N; i++) {
        feed(eng, rs, i, "k1", evs[i].ts, evs[i].tx, &pool[vi[i]]);
        int n = window_of(evs, i, &first);
        if (n > biggest) biggest = n;
        empties += n == 1;
        CU_ASSERT_EQUAL_FATAL(g.n, 1);
        check_sliding(&g, 0, &evs[first], n, i);
        g.n = 0;
    }
    CU_ASSERT(biggest >= minbig);   /* the stream did exercise big windows */
    CU_ASSERT(empties >= 20);       /* and windows that emptied */
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_sliding_distinct_model(void) { sliding_model(vals, NVALS, 20 * 60, 40); }

static void test_sliding_many_values(void) {
    static val many[400];
    static char text[400][8], json[400][10];
    for (int i = 0; i < 400; i++) {
        snprintf(text[i], sizeof text[i], "v%d", i);
        snprintf(json[i], sizeof json[i], "\"v%d\"", i);
        many[i] = (val){json[i], text[i]};
    }
    sliding_model(many, 400, 60, 100);
}

/* A short case by hand: FR is new, then not while it is in the window, and
 * new again once it has left; 1 and 1.0 are one value, "1" another. Twelve
 * events in the same hour make the window big enough for the counted sets. */
static void test_is_new_by_hand(void) {
    vigil_ruleset *rs = load(SLIDING);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static got g;
    g.n = 0;
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    const val fr = {"\"FR\"", "sFR"}, de = {"\"DE\"", "sDE"}, one = {"1", "n1"}, sone = {"\"1\"", "s1"},
              onef = {"1.0", "n1"};
    feed(eng, rs, 1, "h", 0, 0, &fr);
    CU_ASSERT_EQUAL(bool_after(g.det[0], "is_new(country)"), 1);
    feed(eng, rs, 2, "h", 60, 0, &de);
    CU_ASSERT_EQUAL(bool_after(g.det[1], "is_new(country)"), 1);
    feed(eng, rs, 3, "h", 120, 0, &fr);
    CU_ASSERT_EQUAL(bool_after(g.det[2], "is_new(country)"), 0);
    CU_ASSERT_EQUAL(num_after(g.det[2], "distinct(country)"), 2);
    feed(eng, rs, 4, "h", 180, 0, &one);
    feed(eng, rs, 5, "h", 240, 0, &sone);
    CU_ASSERT_EQUAL(bool_after(g.det[4], "is_new(country)"), 1);   /* the text "1" is not the number 1 */
    for (int i = 0; i < 12; i++) feed(eng, rs, 6 + i, "h", 300 + i, 0, &onef);
    CU_ASSERT_EQUAL(bool_after(g.det[5], "is_new(country)"), 0);   /* 1.0 is the number 1 */
    CU_ASSERT_EQUAL(num_after(g.det[g.n - 1], "distinct(country)"), 4);   /* FR, DE, 1, "1" */
    CU_ASSERT_EQUAL(bool_after(g.det[g.n - 1], "is_new(country)"), 0);
    /* at 3,700 s the first FR (0 s) and DE (60 s) have left; the second FR (120 s) has not */
    feed(eng, rs, 30, "h", 3700, 0, &fr);
    CU_ASSERT_EQUAL(bool_after(g.det[g.n - 1], "is_new(country)"), 0);
    CU_ASSERT_EQUAL(num_after(g.det[g.n - 1], "distinct(country)"), 3);   /* FR, 1, "1" */
    feed(eng, rs, 31, "h", 3740, 0, &de);   /* DE left at 3,660 s: new again */
    CU_ASSERT_EQUAL(bool_after(g.det[g.n - 1], "is_new(country)"), 1);
    CU_ASSERT_EQUAL(num_after(g.det[g.n - 1], "prior(distinct(country))"), 3);
    CU_ASSERT_EQUAL(num_after(g.det[g.n - 1], "distinct(country)"), 4);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* Tumbling 1 h windows: each closed window's distinct and its prior() (the
 * window without its latest event) and is_new of the latest event. */
static void test_tumbling_distinct_model(void) {
    enum { N = 2000 };
    static mev evs[N];
    static int vi[N];
    make_stream(evs, vi, N, 7, vals, NVALS, 20 * 60);
    vigil_ruleset *rs = load("rule{name='t',key='k',window=tumbling('1h'),"
                             "when=all_of{ge(distinct('country'),0),any_of{is_new('country'),ge(count(),0)}}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static got g;
    g.n = 0;
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    for (int i = 0; i < N; i++) feed(eng, rs, i, "k1", evs[i].ts, evs[i].tx, &vals[vi[i]]);
    vigil_engine_advance(eng, INT64_MAX);
    /* the model's windows: runs of events with the same ts / 1h */
    int a = 0, big = 0;
    for (int s = 0; s < N;) {
        int e = s;
        while (e < N && evs[e].ts / HOUR == evs[s].ts / HOUR) e++;
        int n = e - s;
        big += n >= 16;
        CU_ASSERT_FATAL(a < g.n);
        const char *det = g.det[a++];
        int ok = num_after(det, "distinct(country)") == model_distinct(&evs[s], n, 0) &&
                 num_after(det, "prior(distinct(country))") == model_distinct(&evs[s], n - 1, 0) &&
                 bool_after(det, "is_new(country)") == model_is_new(&evs[s], n);
        if (!ok) fprintf(stderr, "\n  window at %lld (%d events): %s\n", evs[s].ts, n, det);
        CU_ASSERT_FATAL(ok);
        s = e;
    }
    CU_ASSERT_EQUAL(a, g.n);
    CU_ASSERT(big >= 5);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* ---- state through the codec ------------------------------------------- */

typedef struct recs { int n; int group[8]; char key[8][32]; unsigned char *data[8]; size_t len[8]; } recs;

static int keep_record(void *ud, const vigil_store_record *r) {
    recs *rc = ud;
    if (rc->n == 8) return 1;
    rc->group[rc->n] = r->k.group;
    snprintf(rc->key[rc->n], sizeof rc->key[0], "%.*s", (int)r->k.keylen, r->k.key);
    rc->data[rc->n] = malloc(r->len);
    memcpy(rc->data[rc->n], r->data, r->len);
    rc->len[rc->n++] = r->len;
    return 0;
}

static void recs_free(recs *rc) {
    for (int i = 0; i < rc->n; i++) free(rc->data[i]);
    rc->n = 0;
}

/* The same stream to a reference engine, and to an engine whose state is
 * moved to a fresh one at every 500th event (the records of the moved state
 * encode to the same bytes after loading): the alerts are the same. */
static void test_state_moves_mid_stream(void) {
    enum { N = 3000 };
    static mev evs[N];
    static int vi[N];
    make_stream(evs, vi, N, 99, vals, NVALS, 20 * 60);
    vigil_ruleset *rs = load(SLIDING);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static got ga, gb;
    ga.n = gb.n = 0;
    vigil_engine *ref = vigil_engine_create(rs, NULL, NULL, on_alert, &ga);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &gb);
    vigil_error err;
    int moved_big = 0;
    for (int i = 0; i < N; i++) {
        feed(ref, rs, i, "k1", evs[i].ts, evs[i].tx, &vals[vi[i]]);
        feed(eng, rs, i, "k1", evs[i].ts, evs[i].tx, &vals[vi[i]]);
        CU_ASSERT_EQUAL_FATAL(ga.n, 1);
        CU_ASSERT_EQUAL_FATAL(gb.n, 1);
        CU_ASSERT_STRING_EQUAL_FATAL(ga.det[0], gb.det[0]);
        ga.n = gb.n = 0;
        if (i % 500 != 250) continue;
        recs r1 = {0}, r2 = {0};
        CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(eng, keep_record, &r1, &err), VIGIL_OK);
        CU_ASSERT_EQUAL_FATAL(r1.n, 1);
        vigil_engine_destroy(eng);
        eng = vigil_engine_create(rs, NULL, NULL, on_alert, &gb);
        CU_ASSERT_EQUAL_FATAL(vigil_engine_load_state(eng, r1.group[0], r1.key[0], strlen(r1.key[0]), r1.data[0],
                                                      r1.len[0], &err), VIGIL_OK);
        CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(eng, keep_record, &r2, &err), VIGIL_OK);
        CU_ASSERT_EQUAL_FATAL(r2.n, 1);
        CU_ASSERT_EQUAL(r1.len[0], r2.len[0]);
        CU_ASSERT(r1.len[0] == r2.len[0] && memcmp(r1.data[0], r2.data[0], r1.len[0]) == 0);
        int first = 0;
        moved_big += window_of(evs, i, &first) >= 16;
        recs_free(&r1);
        recs_free(&r2);
    }
    CU_ASSERT(moved_big >= 1);   /* at least one move carried a big window */
    vigil_engine_destroy(ref);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* The bytes of numeric window entries (codec.c writes them without a
 * bounds check per field since issue 16): walked here by the layout
 * codec.c's top comment gives — each kind-2 entry's body is exactly its
 * length, its entries carry the events' times (a bucket's start with
 * precision) and, per set mask bit, the amount as f64 (then, with
 * precision, u32 events in the bucket). */
typedef struct rd_ { const unsigned char *p; size_t len, off; int bad; } rd_;
static void rget(rd_ *r, void *v, size_t n) {
    if (r->len - r->off < n) { r->bad = 1; memset(v, 0, n); return; }
    memcpy(v, r->p + r->off, n);
    r->off += n;
}

static void test_numeric_entry_bytes(void) {
    vigil_ruleset *rs = load("rule{name='ns',key='k',window=sliding('1h'),when=ge(sum('amount'),1000)}\n"
                             "rule{name='np',key='k',window=sliding('1h',{precision='10m'}),when=ge(sum('amount'),1000)}\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, NULL, NULL);
    const int64_t ts[] = {1000, 2000, 700000};
    const double amount[] = {5, 7.25, 11};
    vigil_error err;
    for (int i = 0; i < 3; i++) {
        char js[160];
        snprintf(js, sizeof js, "{\"id\":\"n%d\",\"k\":\"a\",\"ts\":%lld,\"amount\":%g}", i, (long long)(ts[i] / 1000),
                 amount[i]);   /* seconds */
        vigil_event *ev;
        CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
        vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
    }
    recs rc = {0};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(eng, keep_record, &rc, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(rc.n, 1);
    rd_ r = {rc.data[0], rc.len[0], 0, 0};
    char magic[4];
    uint64_t seq;
    int64_t last_ts;
    uint32_t nev, nr;
    rget(&r, magic, 4);
    rget(&r, &seq, 8);
    rget(&r, &last_ts, 8);
    rget(&r, &nev, 4);
    CU_ASSERT(memcmp(magic, "VGS\6", 4) == 0);
    CU_ASSERT_EQUAL(nev, 0);   /* sliding windows keep no events, only ids */
    rget(&r, &nr, 4);
    int windows = 0;
    for (uint32_t i = 0; i < nr && !r.bad; i++) {
        uint32_t nl, ver, blen;
        uint8_t kind;
        rget(&r, &nl, 4);
        char name[8] = {0};
        rget(&r, name, nl < 8 ? nl : 8);
        rget(&r, &ver, 4);
        rget(&r, &kind, 1);
        rget(&r, &blen, 4);
        size_t end = r.off + blen;
        if (kind != 2) { r.off = end; continue; }
        windows++;
        int bucketed = strcmp(name, "np") == 0;
        int64_t la, prec;
        uint8_t alerted;
        uint32_t nagg, n;
        rget(&r, &la, 8);
        rget(&r, &alerted, 1);
        rget(&r, &nagg, 4);
        rget(&r, &prec, 8);
        rget(&r, &n, 4);
        CU_ASSERT_EQUAL(prec, bucketed ? 600000 : 0);
        CU_ASSERT_EQUAL(n, bucketed ? 2 : 3);   /* buckets [0, 10m) and [10m, 20m); or one entry per event */
        double sum_seen = 0;
        for (uint32_t j = 0; j < n && !r.bad; j++) {
            int64_t ets;
            uint32_t mask;
            rget(&r, &ets, 8);
            rget(&r, &mask, 4);
            CU_ASSERT_EQUAL(ets, bucketed ? (j ? 600000 : 0) : ts[j]);
            int bits = 0;
            for (uint32_t k = 0; k < nagg; k++)
                if (mask >> k & 1) {
                    double v;
                    rget(&r, &v, 8);
                    sum_seen += v;
                    bits++;
                    if (!bucketed) CU_ASSERT_EQUAL(v, amount[j]);
                }
            CU_ASSERT_EQUAL(bits, 1);
            for (uint32_t k = 0; bucketed && k < nagg; k++)
                if (mask >> k & 1) {
                    uint32_t cnt;
                    rget(&r, &cnt, 4);
                    CU_ASSERT_EQUAL(cnt, j ? 1u : 2u);
                }
        }
        CU_ASSERT_EQUAL(sum_seen, 5 + 7.25 + 11);
        CU_ASSERT(r.off <= end);   /* the tail fields follow, inside the body */
        r.off = end;
    }
    CU_ASSERT(!r.bad);
    CU_ASSERT_EQUAL(windows, 2);
    CU_ASSERT_EQUAL(r.off, rc.len[0]);
    recs_free(&rc);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* A record written by the engine before the window state was reorganised
 * (commit 6c68fe5, record version 2): a sliding window with distinct and
 * is_new (12 entries), a bucketed one (precision) and an open tumbling
 * window with kept events. Made by feeding golden_feed() below to that
 * engine and printing the record of key "g". */
static const char *GOLDEN_RULES =
    "rule{name='gd',key='k',window=sliding('1h'),when=all_of{ge(distinct('country'),0),"
    "any_of{is_new('country'),ge(sum('amount'),0)}}}\n"
    "rule{name='gb',key='k',window=sliding('1h',{precision='10m'}),when=ge(count(),100)}\n"
    "rule{name='gt',key='k',window=tumbling('1d'),when=ge(count(),100)}\n";

static void golden_feed(vigil_engine *eng, vigil_ruleset *rs) {
    static const char *c[] = {"\"FR\"", "1", "\"1\"", "2.5", "true", "\"DE\"", "\"FR\"", "1.0", "\"x\"", "\"DE\"", "7",
                              "\"FR\""};
    for (int i = 0; i < 12; i++) {
        char js[256];
        snprintf(js, sizeof js, "{\"id\":\"g%d\",\"k\":\"g\",\"ts\":%d,\"type\":\"tx\",\"amount\":%d,\"country\":%s}", i,
                 100000 + 90 * i, 10 + i, c[i]);
        vigil_event *ev;
        vigil_error err;
        CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(vigil_engine_feed(eng, ev, &err), VIGIL_OK);
        vigil_event_release(ev);
    }
}

static int unhex(const char *h, unsigned char *out, size_t cap) {
    size_t n = strlen(h) / 2;
    if (n > cap) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (unsigned char)v;
    }
    return (int)n;
}

static const char GOLDEN_HEX[] =
    "564753020c0000000000000030fc0406000000000c00000002000000673000e1f50500000000460000007b226964223a22673022"
    "2c226b223a2267222c227473223a3130303030302c2274797065223a227478222c22616d6f756e74223a31302c22636f756e7472"
    "79223a224652227d0200000067319040f70500000000430000007b226964223a226731222c226b223a2267222c227473223a3130"
    "303039302c2274797065223a227478222c22616d6f756e74223a31312c22636f756e747279223a317d02000000673220a0f80500"
    "000000450000007b226964223a226732222c226b223a2267222c227473223a3130303138302c2274797065223a227478222c2261"
    "6d6f756e74223a31322c22636f756e747279223a2231227d020000006733b0fff90500000000450000007b226964223a22673322"
    "2c226b223a2267222c227473223a3130303237302c2274797065223a227478222c22616d6f756e74223a31332c22636f756e7472"
    "79223a322e357d020000006734405ffb0500000000460000007b226964223a226734222c226b223a2267222c227473223a313030"
    "3336302c2274797065223a227478222c22616d6f756e74223a31342c22636f756e747279223a747275657d020000006735d0befc"
    "0500000000460000007b226964223a226735222c226b223a2267222c227473223a3130303435302c2274797065223a227478222c"
    "22616d6f756e74223a31352c22636f756e747279223a224445227d020000006736601efe0500000000460000007b226964223a22"
    "6736222c226b223a2267222c227473223a3130303534302c2274797065223a227478222c22616d6f756e74223a31362c22636f75"
    "6e747279223a224652227d020000006737f07dff0500000000450000007b226964223a226737222c226b223a2267222c22747322"
    "3a3130303633302c2274797065223a227478222c22616d6f756e74223a31372c22636f756e747279223a312e307d020000006738"
    "80dd000600000000450000007b226964223a226738222c226b223a2267222c227473223a3130303732302c2274797065223a2274"
    "78222c22616d6f756e74223a31382c22636f756e747279223a2278227d020000006739103d020600000000460000007b22696422"
    "3a226739222c226b223a2267222c227473223a3130303831302c2274797065223a227478222c22616d6f756e74223a31392c2263"
    "6f756e747279223a224445227d03000000673130a09c030600000000440000007b226964223a22673130222c226b223a2267222c"
    "227473223a3130303930302c2274797065223a227478222c22616d6f756e74223a32302c22636f756e747279223a377d03000000"
    "67313130fc040600000000470000007b226964223a22673131222c226b223a2267222c227473223a3130303939302c2274797065"
    "223a227478222c22616d6f756e74223a32312c22636f756e747279223a224652227d03000000020000006764010000000230fc04"
    "0600000000010300000000000000000000000c00000000e1f5050000000007000000020000004652020000004652000000000000"
    "24409040f705000000000700000001000000310100000031000000000000264020a0f80500000000070000000100000031010000"
    "00310000000000002840b0fff905000000000700000003000000322e3503000000322e350000000000002a40405ffb0500000000"
    "07000000040000007472756504000000747275650000000000002c40d0befc050000000007000000020000004445020000004445"
    "0000000000002e40601efe0500000000070000000200000046520200000046520000000000003040f07dff050000000007000000"
    "01000000310100000031000000000000314080dd00060000000007000000010000007801000000780000000000003240103d0206"
    "00000000070000000200000044450200000044450000000000003340a09c03060000000007000000010000003701000000370000"
    "00000000344030fc0406000000000700000002000000465202000000465200000000000035400000000000000000000000000000"
    "000000000000000000000000000000000000000000000080020000006762010000000200000000000000000001000000c0270900"
    "000000000300000080c6ef05000000000100000000000000000000000300000040eef80500000000010000000000000000000000"
    "06000000001602060000000001000000000000000000000003000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000008002000000677401000000020000000000000000000100000000000000000000000c00000000e1"
    "f505000000000100000000000000000000009040f7050000000001000000000000000000000020a0f80500000000010000000000"
    "000000000000b0fff90500000000010000000000000000000000405ffb0500000000010000000000000000000000d0befc050000"
    "0000010000000000000000000000601efe0500000000010000000000000000000000f07dff050000000001000000000000000000"
    "000080dd000600000000010000000000000000000000103d020600000000010000000000000000000000a09c0306000000000100"
    "0000000000000000000030fc04060000000001000000000000000000000001005c26050000000000b84c0a000000000c00000000"
    "0000000b000000000000000100000002000000030000000400000005000000060000000700000008000000090000000a00000001"
    "0b0000000000000000000080";

/* window_events (DESIGN.md §3): a sliding alert names the window's events
 * that counted (the fraud reports of compromised_terminal, not the
 * transactions), capped by max_alert_events with window_events_truncated,
 * kept across a store round trip; not part of the alert id. */
typedef struct wgot { int n; char json[8][1024]; char id[8][33]; } wgot;
static void on_walert(void *ud, const vigil_alert *a) {
    wgot *g = ud;
    if (g->n >= 8) return;
    char *js = vigil_alert_to_json(a, 0);
    snprintf(g->json[g->n], sizeof g->json[0], "%s", js ? js : "");
    snprintf(g->id[g->n], sizeof g->id[0], "%s", a->id);
    free(js);
    g->n++;
}

static void wfeed(vigil_engine *eng, vigil_ruleset *rs, const char *id, const char *type, const char *cust, long long ts) {
    char js[256];
    snprintf(js, sizeof js, "{\"id\":\"%s\",\"terminal_id\":\"T1\",\"type\":\"%s\",\"customer_id\":\"%s\",\"ts\":%lld}",
             id, type, cust, ts);
    vigil_event *ev = NULL;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
}

static void test_window_events(void) {
    vigil_ruleset *rs = load("rule { name = \"compromised_terminal\", key = \"terminal_id\", window = sliding(\"28d\"),\n"
                             "  when = all_of{ eq(e.type, \"tx\"), ge(distinct(\"customer_id\", { type = \"report\" }), 2) } }\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static wgot g1, g2, g3;
    vigil_error err;
    vigil_engine *e1 = vigil_engine_create(rs, NULL, NULL, on_walert, &g1);
    wfeed(e1, rs, "r1", "report", "c1", 1000);
    wfeed(e1, rs, "t1", "tx", "c9", 2000);
    wfeed(e1, rs, "r2", "report", "c2", 3000);
    /* the state moves to another engine (a store round trip) before the alert */
    recs r1 = {0};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e1, keep_record, &r1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(r1.n, 1);
    vigil_engine *e2 = vigil_engine_create(rs, NULL, NULL, on_walert, &g2);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_load_state(e2, r1.group[0], r1.key[0], strlen(r1.key[0]), r1.data[0], r1.len[0],
                                                  &err), VIGIL_OK);
    wfeed(e1, rs, "t2", "tx", "c9", 4000);
    wfeed(e2, rs, "t2", "tx", "c9", 4000);
    CU_ASSERT_EQUAL_FATAL(g1.n, 1);
    CU_ASSERT_EQUAL_FATAL(g2.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g1.json[0], "\"events\":[\"t2\"]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(g1.json[0], "\"window_events\":[\"r1\",\"r2\"]"));
    CU_ASSERT_PTR_NULL(strstr(g1.json[0], "window_events_truncated"));
    CU_ASSERT_STRING_EQUAL(g1.json[0], g2.json[0]);
    CU_ASSERT_STRING_EQUAL(g1.id[0], g2.id[0]);
    /* a report that left the window is not named; the cap keeps the newest */
    vigil_engine_opts o = {.max_alert_events = 2};
    vigil_engine *e3 = vigil_engine_create(rs, &o, NULL, on_walert, &g3);
    wfeed(e3, rs, "r0", "report", "c0", 0);
    wfeed(e3, rs, "r1", "report", "c1", 29LL * 86400000);   /* r0 has left (28 days) */
    wfeed(e3, rs, "r2", "report", "c2", 29LL * 86400000 + 1);
    wfeed(e3, rs, "r3", "report", "c3", 29LL * 86400000 + 2);
    wfeed(e3, rs, "t3", "tx", "c9", 29LL * 86400000 + 3);
    CU_ASSERT_EQUAL_FATAL(g3.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g3.json[0], "\"window_events\":[\"r2\",\"r3\"],\"window_events_truncated\":true"));
    /* ids longer than the 7 bytes kept in the window's own word, the first one
     * short (kept inline, then moved into a block), across a store round trip */
    static wgot g4, g5;
    vigil_engine *e4 = vigil_engine_create(rs, NULL, NULL, on_walert, &g4);
    wfeed(e4, rs, "r1", "report", "c1", 1000);
    wfeed(e4, rs, "report-0000000002", "report", "c2", 2000);
    recs r4 = {0};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e4, keep_record, &r4, &err), VIGIL_OK);
    vigil_engine *e5 = vigil_engine_create(rs, NULL, NULL, on_walert, &g5);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_load_state(e5, r4.group[0], r4.key[0], strlen(r4.key[0]), r4.data[0], r4.len[0],
                                                  &err), VIGIL_OK);
    wfeed(e4, rs, "tx-000000000003", "tx", "c9", 3000);
    wfeed(e5, rs, "tx-000000000003", "tx", "c9", 3000);
    CU_ASSERT_EQUAL_FATAL(g4.n, 1);
    CU_ASSERT_EQUAL_FATAL(g5.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(g4.json[0], "\"window_events\":[\"r1\",\"report-0000000002\"]"));
    CU_ASSERT_STRING_EQUAL(g4.json[0], g5.json[0]);
    vigil_engine_destroy(e4);
    vigil_engine_destroy(e5);
    for (int i = 0; i < r4.n; i++) free(r4.data[i]);
    vigil_engine_destroy(e1);
    vigil_engine_destroy(e2);
    vigil_engine_destroy(e3);
    for (int i = 0; i < r1.n; i++) free(r1.data[i]);
    vigil_ruleset_release(rs);
}

/* Load a record into a fresh engine; its state's record is put in *out. */
static vigil_engine *load_golden(vigil_ruleset *rs, got *g, const unsigned char *rec, size_t len, recs *out) {
    vigil_error err;
    vigil_engine *e = vigil_engine_create(rs, NULL, NULL, on_alert, g);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_load_state(e, 0, "g", 1, rec, len, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e, keep_record, out, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(out->n, 1);
    return e;
}

/* One more event ("x", amount 5) to both engines, then the end of input:
 * one alert each, the sliding rule's. */
static void one_more(vigil_engine *e1, vigil_engine *e2, vigil_ruleset *rs, got *g1, got *g2) {
    vigil_error err;
    g1->n = g2->n = 0;
    const char *js = "{\"id\":\"g12\",\"k\":\"g\",\"ts\":101100,\"type\":\"tx\",\"amount\":5,\"country\":\"x\"}";
    vigil_event *ev;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(e1, ev, &err);
    vigil_engine_feed(e2, ev, &err);
    vigil_event_release(ev);
    vigil_engine_advance(e1, INT64_MAX);
    vigil_engine_advance(e2, INT64_MAX);
    CU_ASSERT_EQUAL(g1->n, 1);
    CU_ASSERT_EQUAL(g2->n, 1);
}

/* The v2 record: it loads, encodes to a record that loads to the same bytes,
 * and the loaded state goes on as the old engine's did. Its values have no
 * type (before v5): 1 and "1" were one value there and stay one; an engine
 * fed the same events today keeps them apart (distinct 8, not 7). */
static void test_golden_record(void) {
    vigil_ruleset *rs = load(GOLDEN_RULES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static unsigned char old[8192];
    int olen = unhex(GOLDEN_HEX, old, sizeof old);
    CU_ASSERT_FATAL(olen > 4);
    static got g1, g2;
    g1.n = g2.n = 0;
    vigil_error err;
    vigil_engine *e1 = vigil_engine_create(rs, NULL, NULL, on_alert, &g1);
    golden_feed(e1, rs);
    recs r1 = {0}, r2 = {0}, r3 = {0};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e1, keep_record, &r1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(r1.n, 1);
    CU_ASSERT(memcmp(r1.data[0], "VGS\6", 4) == 0);   /* v6 since window_events (v5: typed values) */
    vigil_engine *e2 = load_golden(rs, &g2, old, (size_t)olen, &r2);
    CU_ASSERT(memcmp(r2.data[0], "VGS\6", 4) == 0);
    vigil_engine *e3 = load_golden(rs, &g2, r2.data[0], r2.len[0], &r3);   /* v6 round trip */
    CU_ASSERT(r3.len[0] == r2.len[0] && memcmp(r3.data[0], r2.data[0], r2.len[0]) == 0);
    vigil_engine_destroy(e3);
    one_more(e1, e2, rs, &g1, &g2);
    if (g1.n == 1 && g2.n == 1) {
        CU_ASSERT_EQUAL(num_after(g1.det[0], "distinct(country)"), 8);   /* FR 1 "1" 2.5 true DE x 7 */
        CU_ASSERT_EQUAL(num_after(g2.det[0], "distinct(country)"), 7);   /* FR 1 2.5 true DE x 7 */
        CU_ASSERT_EQUAL(bool_after(g2.det[0], "is_new(country)"), 0);
        CU_ASSERT_EQUAL(num_after(g2.det[0], "sum(amount)"), 10 * 12 + 66 + 5);
        CU_ASSERT_EQUAL(num_after(g1.det[0], "sum(amount)"), 10 * 12 + 66 + 5);
    }
    recs_free(&r1);
    recs_free(&r2);
    recs_free(&r3);
    vigil_engine_destroy(e1);
    vigil_engine_destroy(e2);
    vigil_ruleset_release(rs);
}

/* The same events as a v4 record, written by the engine just before values
 * were typed (dccbd19, `test_window --print-golden`): today's format until
 * then. Its untyped values are typed as their text reads (codec.c). */
static const char GOLDEN_V4_HEX[] =
    "564753040c0000000000000030fc0406000000000c00000002000000673000e1f50500000000460000007b226964223a22673022"
    "2c226b223a2267222c227473223a3130303030302c2274797065223a227478222c22616d6f756e74223a31302c22636f756e7472"
    "79223a224652227d0200000067319040f70500000000430000007b226964223a226731222c226b223a2267222c227473223a3130"
    "303039302c2274797065223a227478222c22616d6f756e74223a31312c22636f756e747279223a317d02000000673220a0f80500"
    "000000450000007b226964223a226732222c226b223a2267222c227473223a3130303138302c2274797065223a227478222c2261"
    "6d6f756e74223a31322c22636f756e747279223a2231227d020000006733b0fff90500000000450000007b226964223a22673322"
    "2c226b223a2267222c227473223a3130303237302c2274797065223a227478222c22616d6f756e74223a31332c22636f756e7472"
    "79223a322e357d020000006734405ffb0500000000460000007b226964223a226734222c226b223a2267222c227473223a313030"
    "3336302c2274797065223a227478222c22616d6f756e74223a31342c22636f756e747279223a747275657d020000006735d0befc"
    "0500000000460000007b226964223a226735222c226b223a2267222c227473223a3130303435302c2274797065223a227478222c"
    "22616d6f756e74223a31352c22636f756e747279223a224445227d020000006736601efe0500000000460000007b226964223a22"
    "6736222c226b223a2267222c227473223a3130303534302c2274797065223a227478222c22616d6f756e74223a31362c22636f75"
    "6e747279223a224652227d020000006737f07dff0500000000450000007b226964223a226737222c226b223a2267222c22747322"
    "3a3130303633302c2274797065223a227478222c22616d6f756e74223a31372c22636f756e747279223a312e307d020000006738"
    "80dd000600000000450000007b226964223a226738222c226b223a2267222c227473223a3130303732302c2274797065223a2274"
    "78222c22616d6f756e74223a31382c22636f756e747279223a2278227d020000006739103d020600000000460000007b22696422"
    "3a226739222c226b223a2267222c227473223a3130303831302c2274797065223a227478222c22616d6f756e74223a31392c2263"
    "6f756e747279223a224445227d03000000673130a09c030600000000440000007b226964223a22673130222c226b223a2267222c"
    "227473223a3130303930302c2274797065223a227478222c22616d6f756e74223a32302c22636f756e747279223a377d03000000"
    "67313130fc040600000000470000007b226964223a22673131222c226b223a2267222c227473223a3130303939302c2274797065"
    "223a227478222c22616d6f756e74223a32312c22636f756e747279223a224652227d030000000200000067640100000002bb0100"
    "0030fc040600000000010300000000000000000000000c00000000e1f50500000000070000000200000046520200000046520000"
    "0000000024409040f705000000000700000001000000310100000031000000000000264020a0f805000000000700000001000000"
    "3101000000310000000000002840b0fff905000000000700000003000000322e3503000000322e350000000000002a40405ffb05"
    "0000000007000000040000007472756504000000747275650000000000002c40d0befc0500000000070000000200000044450200"
    "000044450000000000002e40601efe0500000000070000000200000046520200000046520000000000003040f07dff0500000000"
    "0700000001000000310100000031000000000000314080dd00060000000007000000010000007801000000780000000000003240"
    "103d020600000000070000000200000044450200000044450000000000003340a09c030600000000070000000100000037010000"
    "0037000000000000344030fc04060000000007000000020000004652020000004652000000000000354000000000000000000000"
    "00000000000000000000000000000000000000000000000000000080020000006762010000000287000000000000000000000000"
    "01000000c0270900000000000300000080c6ef05000000000100000000000000000000000300000040eef8050000000001000000"
    "00000000000000000600000000160206000000000100000000000000000000000300000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000008002000000677401000000025f010000000000000000000000010000000000"
    "0000000000000c00000000e1f505000000000100000000000000000000009040f7050000000001000000000000000000000020a0"
    "f80500000000010000000000000000000000b0fff90500000000010000000000000000000000405ffb0500000000010000000000"
    "000000000000d0befc0500000000010000000000000000000000601efe0500000000010000000000000000000000f07dff050000"
    "000001000000000000000000000080dd000600000000010000000000000000000000103d02060000000001000000000000000000"
    "0000a09c03060000000001000000000000000000000030fc04060000000001000000000000000000000001005c26050000000000"
    "b84c0a000000000c000000000000000b000000000000000100000002000000030000000400000005000000060000000700000008"
    "000000090000000a000000010b0000000000000000000080";

static void test_golden_record_v4(void) {
    vigil_ruleset *rs = load(GOLDEN_RULES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static unsigned char v4[8192], v2[8192];
    int len4 = unhex(GOLDEN_V4_HEX, v4, sizeof v4), len2 = unhex(GOLDEN_HEX, v2, sizeof v2);
    CU_ASSERT_FATAL(len4 > 4 && memcmp(v4, "VGS\4", 4) == 0 && len2 > 4);
    static got g1, g2;
    recs r4 = {0}, r2 = {0};
    vigil_engine *e4 = load_golden(rs, &g1, v4, (size_t)len4, &r4);
    vigil_engine *e2 = load_golden(rs, &g2, v2, (size_t)len2, &r2);
    /* v2 and v4 hold the same state: it loads to the same v5 record */
    CU_ASSERT(r4.len[0] == r2.len[0] && memcmp(r4.data[0], r2.data[0], r2.len[0]) == 0);
    one_more(e4, e2, rs, &g1, &g2);
    if (g1.n == 1 && g2.n == 1) {
        CU_ASSERT_STRING_EQUAL(g1.det[0], g2.det[0]);
        CU_ASSERT_EQUAL(num_after(g1.det[0], "distinct(country)"), 7);
    }
    /* a typed value after the load: the text "7" is new beside the number 7 */
    g1.n = 0;
    vigil_error err;
    const char *js = "{\"id\":\"g13\",\"k\":\"g\",\"ts\":101200,\"type\":\"tx\",\"amount\":5,\"country\":\"7\"}";
    vigil_event *ev;
    vigil_engine_destroy(e4);
    recs_free(&r4);
    e4 = load_golden(rs, &g1, v4, (size_t)len4, &r4);
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(e4, ev, &err);
    vigil_event_release(ev);
    CU_ASSERT_EQUAL(g1.n, 1);
    if (g1.n == 1) {
        CU_ASSERT_EQUAL(bool_after(g1.det[0], "is_new(country)"), 1);
        CU_ASSERT_EQUAL(num_after(g1.det[0], "distinct(country)"), 8);   /* the seven, and "7" */
    }
    recs_free(&r4);
    recs_free(&r2);
    vigil_engine_destroy(e4);
    vigil_engine_destroy(e2);
    vigil_ruleset_release(rs);
}

/* A tumbling window that closed without alerting is retained for the
 * stragglers allowed_lateness accepts (DESIGN.md §3): kept through the
 * state record (v5), so that an engine that loads it alerts when the
 * straggler comes, once; a straggler after the retention (the watermark
 * past its end + lateness) is late for it. */
static void feed_ts(vigil_engine *eng, vigil_ruleset *rs, const char *id, long long ts_s) {
    char js[160];
    snprintf(js, sizeof js, "{\"id\":\"%s\",\"k\":\"r\",\"ts\":%lld,\"type\":\"tx\",\"country\":\"FR\"}", id, ts_s);
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
}

static void test_retained_window_moves(void) {
    vigil_ruleset *rs = load("rule{name='t',key='k',window=tumbling('1m'),when=all_of{ge(count(),3),"
                             "ge(distinct('country'),1)}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    vigil_engine_opts o = {.max_runs = 64, .max_alert_events = 100, .max_evidence = 20, .allowed_lateness_ms = 30000};
    static got g;
    g.n = 0;
    vigil_error err;
    vigil_engine *e1 = vigil_engine_create(rs, &o, NULL, on_alert, &g);
    feed_ts(e1, rs, "e1", 1000000020);   /* [1000000020 s, +60 s) is the window of 1000000020 .. 79 */
    feed_ts(e1, rs, "e2", 1000000030);
    feed_ts(e1, rs, "e4", 1000000085);   /* closes it with 2 events: no alert, retained */
    CU_ASSERT_EQUAL(g.n, 0);
    recs r1 = {0}, r2 = {0};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e1, keep_record, &r1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(r1.n, 1);
    vigil_engine_destroy(e1);
    vigil_engine *e2 = vigil_engine_create(rs, &o, NULL, on_alert, &g);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_load_state(e2, r1.group[0], "r", 1, r1.data[0], r1.len[0], &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e2, keep_record, &r2, &err), VIGIL_OK);
    CU_ASSERT(r2.n == 1 && r2.len[0] == r1.len[0] && memcmp(r2.data[0], r1.data[0], r1.len[0]) == 0);
    feed_ts(e2, rs, "e4b", 1000000086);   /* the watermark moves (same window as e4) */
    feed_ts(e2, rs, "e3", 1000000070);    /* the straggler: [..20, ..80) now holds 3 */
    CU_ASSERT_EQUAL(g.n, 1);
    if (g.n == 1) CU_ASSERT_EQUAL(num_after(g.det[0], "count()"), 3);
    feed_ts(e2, rs, "e3b", 1000000075);   /* it alerted: never twice */
    CU_ASSERT_EQUAL(g.n, 1);
    vigil_engine_advance(e2, INT64_MAX);
    CU_ASSERT_EQUAL(g.n, 1);   /* [..80, ..140) holds e4 e4b: 2 */
    recs_free(&r1);
    recs_free(&r2);
    vigil_engine_destroy(e2);
    vigil_ruleset_release(rs);
    /* retained only while a straggler may come: once the watermark reaches
     * its end + lateness (..80 + 30 s) it goes (the v5 record then converts
     * to v4, which has no retained windows) */
    rs = load("rule{name='c',key='k',window=tumbling('1m'),when=ge(count(),3)}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    vigil_engine *e3 = vigil_engine_create(rs, &o, NULL, on_alert, &g);
    feed_ts(e3, rs, "f1", 1000000020);
    feed_ts(e3, rs, "f2", 1000000030);
    feed_ts(e3, rs, "f4", 1000000109);
    static unsigned char v4[4096];
    recs r3 = {0}, r4 = {0};
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e3, keep_record, &r3, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(test_record_v5_to_v4(r3.data[0], r3.len[0], v4, sizeof v4), 0);   /* one retained */
    feed_ts(e3, rs, "f5", 1000000110);
    CU_ASSERT_EQUAL_FATAL(vigil_engine_foreach_state(e3, keep_record, &r4, &err), VIGIL_OK);
    CU_ASSERT(test_record_v5_to_v4(r4.data[0], r4.len[0], v4, sizeof v4) > 0);   /* let go */
    CU_ASSERT_EQUAL(g.n, 1);
    recs_free(&r3);
    recs_free(&r4);
    vigil_engine_destroy(e3);
    vigil_ruleset_release(rs);
}

/* test_window --print-golden: how GOLDEN_HEX (run on 6c68fe5) and GOLDEN_V4_HEX (on dccbd19) were made */
static void print_golden(void) {
    vigil_ruleset *rs = load(GOLDEN_RULES);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rs);
    static got g;
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    golden_feed(eng, rs);
    recs r = {0};
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_engine_foreach_state(eng, keep_record, &r, &err), VIGIL_OK);
    for (size_t i = 0; r.n && i < r.len[0]; i++) fprintf(stderr, "%02x", r.data[0][i]);
    fprintf(stderr, "\n");
    recs_free(&r);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

int main(int argc, char **argv) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("window", NULL, NULL);
    if (argc == 2 && strcmp(argv[1], "--print-golden") == 0) {
        CU_add_test(s, "print the golden record", print_golden);
    } else {
        CU_add_test(s, "sliding distinct/is_new/prior against a model", test_sliding_distinct_model);
        CU_add_test(s, "sliding distinct with 400 values against a model", test_sliding_many_values);
        CU_add_test(s, "is_new and text forms by hand", test_is_new_by_hand);
        CU_add_test(s, "tumbling distinct and prior against a model", test_tumbling_distinct_model);
        CU_add_test(s, "window state moved between engines mid-stream", test_state_moves_mid_stream);
        CU_add_test(s, "a v2 record loads and goes on as before", test_golden_record);
        CU_add_test(s, "a v4 record (before typed values) loads", test_golden_record_v4);
        CU_add_test(s, "a retained closed window moves between engines", test_retained_window_moves);
        CU_add_test(s, "window_events: the counted events, capped, across a store round trip", test_window_events);
        CU_add_test(s, "numeric window entries: their bytes, with and without precision", test_numeric_entry_bytes);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}
