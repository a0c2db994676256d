/* test_decode_json.c — the JSON event decoder (engine/src/event_json.c,
 * json_arena.c) and the batch decoder of the server's sources
 * (server/ingest/batch.c) against what they must give, issue 16's decode
 * steps included.
 *
 * - The arena: cJSON's allocations come from the thread's arena only while
 *   an event is decoded; it is reset for every event (the same addresses
 *   again); an event too big for its chunk takes blocks of its own; a tree
 *   parsed outside the arena survives any number of decodes; two threads
 *   decoding at once do not share an arena.
 * - Fixed cases: duplicate members (the first wins, as
 *   cJSON_GetObjectItemCaseSensitive), nested paths and a literal dotted
 *   key, numbers' raw text (1, 1.0, 1e0 are three keys; ids above 2^53), a
 *   member name written with escapes, a member's name inside a string.
 * - A generator of random events whose truth is known because it wrote
 *   them (xorshift64*, VIGIL_DECODE_SEED, default 20261207, printed on
 *   failure): members drawn from the ruleset's names and others, duplicates,
 *   nesting, every value type, numbers in many spellings, random
 *   whitespace. Each event's slots, keys, id, time and status must be what
 *   the generator says: slots by the first member of each path, keys and
 *   ids by their raw text.
 * - Batches: a bad line in the middle of NDJSON (invalid JSON, invalid
 *   UTF-8, a control character, text after the value) under both policies,
 *   with the line, byte offset and message of each; and the batch's one
 *   pass over a line (UTF-8 and the shape limits, issue 16) against the two
 *   passes it replaced (vigil_utf8_check, then the old shape() copied here),
 *   by the messages, on random lines of brackets, quotes, escapes and good
 *   and bad UTF-8 under small limits; json_text.c's check of an event's
 *   text against the one it replaced, and the top-level members' ':' it
 *   notes against a plain walk. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/sha.h>
#include <CUnit/Basic.h>
#include "vt_rand.h"
#include "vigil/event.h"
#include "vigil/rules.h"
#include "batch.h"
#include "../../engine/src/json_arena.h"
#include "../../engine/src/json_text.h"
#include "../../engine/src/json_scan.h"

static vigil_ruleset *rs;
static uint64_t seed0 = 20261207, rng;

static uint64_t next_rand(void) { return vt_xorshift(&rng); }
static unsigned below(unsigned n) { return (unsigned)(next_rand() % n); }

/* Three key groups (customer_id, the nested card.id, acct) and fields of
 * every kind: plain, nested (card.bin), a literal dotted key (a.b). */
static const char RULES[] =
    "rule{ name='p', key='customer_id', pattern=begin('x'):where{ amount=gt(0), ['card.bin']='4111',"
    "  ['a.b']='y', flag=true, note='n' } }\n"
    "rule{ name='w', key='card.id', where={ type='tx' }, window=sliding('1h'), when=ge(count(), 2) }\n"
    "rule{ name='v', key='acct', pattern=begin('x'):where{ amount=lt(5) } }\n";

static int setup(void) {
    const char *s = getenv("VIGIL_DECODE_SEED");
    if (s) seed0 = strtoull(s, NULL, 10);
    vigil_error errs[2];
    int nerrs = 0;
    if (vigil_rules_load_string("decode.lua", RULES, strlen(RULES), NULL, &rs, errs, 2, &nerrs) != VIGIL_OK) {
        fprintf(stderr, "ruleset: %s\n", nerrs ? errs[0].msg : "?");
        return 1;
    }
    return 0;
}

static int teardown(void) {
    vigil_ruleset_release(rs);
    return 0;
}

static int group_of(const char *key) {
    for (int g = 0; g < vigil_ruleset_group_count(rs); g++)
        if (strcmp(vigil_ruleset_group_key(rs, g), key) == 0) return g;
    return -1;
}

static int field_of(const char *path) {
    for (int f = 0; f < vigil_ruleset_field_count(rs); f++)
        if (strcmp(vigil_ruleset_field_path(rs, f), path) == 0) return f;
    return -1;
}

static vigil_event *dec(const char *js, vigil_status want) {
    vigil_event *ev = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 0, &ev, &err);
    CU_ASSERT_EQUAL(st, want);
    if (st != want) fprintf(stderr, "\n%s: status %d (%s), want %d\n", js, st, err.msg, want);
    return ev;
}

static const char *key(const vigil_event *ev, const char *name) { return vigil_event_key(ev, group_of(name), NULL); }

/* ---- the arena ----------------------------------------------------------------- */

/* The arena tests decode on cJSON's path (json_scan.c would take these
 * events without cJSON). */
static void test_arena_reset(void) {
    vjs_enabled = 0;
    CU_ASSERT_EQUAL(vjson_arena_used(), 0);
    vjson_arena_begin();
    cJSON *a = cJSON_Parse("{\"x\":[1,2,3],\"y\":\"text\"}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT(vjson_arena_used() > 0);
    cJSON_Delete(a);   /* harmless inside: the arena's end takes it */
    vjson_arena_end();
    CU_ASSERT_EQUAL(vjson_arena_used(), 0);
    vjson_arena_begin();
    cJSON *b = cJSON_Parse("{\"x\":[1,2,3],\"y\":\"text\"}");
    CU_ASSERT_PTR_EQUAL(a, b);   /* reset: the same bytes again */
    vjson_arena_begin();         /* nested: ignored, counted */
    vjson_arena_end();
    CU_ASSERT(vjson_arena_used() > 0);
    vjson_arena_end();
    CU_ASSERT_EQUAL(vjson_arena_used(), 0);
    /* every decode resets it */
    for (int i = 0; i < 100; i++) {
        vigil_event *ev = dec("{\"customer_id\":7,\"ts\":1,\"note\":\"abc\"}", VIGIL_OK);
        CU_ASSERT_EQUAL(vjson_arena_used(), 0);
        vigil_event_release(ev);
    }
    vjs_enabled = 1;
}

static void test_arena_big_event(void) {
    vjs_enabled = 0;
    size_t n = 300 * 1024;   /* more than the 64 KiB chunk: blocks of their own */
    char *js = malloc(n + 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(js);
    int off = snprintf(js, n + 100, "{\"ts\":1,\"customer_id\":\"");
    memset(js + off, 'k', n);
    snprintf(js + off + n, 100, "\",\"amount\":1.5e0,\"acct\":1.50}");
    vigil_event *ev = dec(js, VIGIL_OK);
    CU_ASSERT_EQUAL(vjson_arena_extra_blocks(), 0);   /* freed at the end */
    if (ev) {
        size_t kl = 0;
        CU_ASSERT_PTR_NOT_NULL(vigil_event_key(ev, group_of("customer_id"), &kl));
        CU_ASSERT_EQUAL(kl, n);
        CU_ASSERT_STRING_EQUAL(key(ev, "acct"), "1.50");
        CU_ASSERT_EQUAL(vigil_event_slot(ev, field_of("amount"))->u.num, 1.5);
        vigil_event_release(ev);
    }
    /* many members: the tree itself outgrows the chunk */
    size_t cap = 2 * 1024 * 1024, len = 0;
    char *many = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(many);
    len += (size_t)snprintf(many + len, cap - len, "{\"ts\":2");
    for (int i = 0; i < 20000; i++) len += (size_t)snprintf(many + len, cap - len, ",\"m%d\":[%d,\"s\"]", i, i);
    snprintf(many + len, cap - len, ",\"acct\":12345678901234567891}");
    ev = dec(many, VIGIL_OK);
    if (ev) {
        CU_ASSERT_STRING_EQUAL(key(ev, "acct"), "12345678901234567891");
        vigil_event_release(ev);
    }
    CU_ASSERT_EQUAL(vjson_arena_used(), 0);
    free(many);
    free(js);
    vjs_enabled = 1;
}

/* A tree parsed with no arena active is malloc'd: decodes between its parse
 * and its delete must not touch it (they would, if the hooks used the
 * arena outside begin/end), and printing and freeing work as before. */
static void test_outside_arena(void) {
    vjs_enabled = 0;
    cJSON *t = cJSON_Parse("{\"a\":[1,2,{\"b\":\"c\"}],\"d\":true,\"e\":\"long enough to be a block\"}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    char *before = cJSON_PrintUnformatted(t);
    for (int i = 0; i < 50; i++) {
        vigil_event *ev = dec("{\"customer_id\":\"zzzzzzzzzzzzzzzzzzzzzzzz\",\"ts\":1,\"note\":\"xxxxxxxxxxxxxxxx\","
                              "\"a\":[9,9,{\"b\":\"q\"}]}", VIGIL_OK);
        vigil_event_release(ev);
    }
    char *after = cJSON_PrintUnformatted(t);
    CU_ASSERT_STRING_EQUAL(before, after);
    cJSON_AddStringToObject(t, "f", "added after the decodes");
    char *more = cJSON_PrintUnformatted(t);
    CU_ASSERT_PTR_NOT_NULL(strstr(more, "added after the decodes"));
    free(before);        /* cJSON_Print's result is freed with free() by much of the tree */
    cJSON_free(after);
    cJSON_free(more);
    cJSON_Delete(t);
    vjs_enabled = 1;
}

typedef struct tharg { int id; int bad; } tharg;

static void *decode_thread(void *p) {
    tharg *a = p;
    char js[128], want[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(want, sizeof want, "%d.%d", a->id, i);
        snprintf(js, sizeof js, "{\"ts\":%d,\"acct\":%s,\"customer_id\":\"t%d\"}", i, want, a->id);
        vigil_event *ev = NULL;
        vigil_error err;
        if (vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 0, &ev, &err) != VIGIL_OK ||
            strcmp(vigil_event_key(ev, group_of("acct"), NULL), want) != 0)
            a->bad++;
        vigil_event_release(ev);
    }
    return NULL;
}

static void test_arena_threads(void) {
    vjs_enabled = 0;   /* set before the threads start, read by both */
    pthread_t t[2];
    tharg a[2] = {{.id = 1}, {.id = 2}};
    for (int i = 0; i < 2; i++) CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, decode_thread, &a[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(a[0].bad, 0);
    CU_ASSERT_EQUAL(a[1].bad, 0);
    vjs_enabled = 1;
}

/* ---- fixed cases ------------------------------------------------------------------ */

static void test_fixed_cases(void) {
    vigil_event *ev;
    /* duplicates: the first member of a name wins, for slots, keys, time and id */
    ev = dec("{\"id\":\"first\",\"ts\":1,\"customer_id\":1.0,\"amount\":3,\"customer_id\":2,\"amount\":4,"
             "\"id\":\"second\",\"ts\":2}", VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), "first");
    CU_ASSERT_EQUAL(vigil_event_time(ev), 1000);
    CU_ASSERT_STRING_EQUAL(key(ev, "customer_id"), "1.0");
    CU_ASSERT_EQUAL(vigil_event_slot(ev, field_of("amount"))->u.num, 3);
    vigil_event_release(ev);
    /* 1, 1.0, 1e0 are three keys; big ids keep their digits; -0 and 1E+2 as written */
    const char *spell[] = {"1", "1.0", "1e0", "-0", "1E+2", "12345678901234567891", "0.1e-7"};
    for (size_t i = 0; i < sizeof spell / sizeof *spell; i++) {
        char js[160];
        snprintf(js, sizeof js, "{ \"ts\" : 1 , \"acct\" :%s , \"id\":%s,\"customer_id\" :\t%s}", spell[i], spell[i],
                 spell[i]);
        ev = dec(js, VIGIL_OK);
        CU_ASSERT_STRING_EQUAL(key(ev, "acct"), spell[i]);
        CU_ASSERT_STRING_EQUAL(key(ev, "customer_id"), spell[i]);
        CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), spell[i]);
        vigil_event_release(ev);
    }
    /* nested paths, and a literal dotted key before the nested one */
    ev = dec("{\"ts\":1,\"card\":{\"bin\":\"4111\",\"id\":0012.50,\"id\":7},\"a\":{\"b\":\"nested\"},"
             "\"a.b\":\"literal\",\"card\":{\"id\":9}}", VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(key(ev, "card.id"), "0012.50");
    CU_ASSERT_STRING_EQUAL(vigil_event_slot(ev, field_of("card.bin"))->u.str, "4111");
    CU_ASSERT_STRING_EQUAL(vigil_event_slot(ev, field_of("a.b"))->u.str, "literal");
    vigil_event_release(ev);
    ev = dec("{\"ts\":1,\"a\":{\"b\":\"nested\"},\"card\":[1],\"card.id\":5e1}", VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_event_slot(ev, field_of("a.b"))->u.str, "nested");
    CU_ASSERT_STRING_EQUAL(key(ev, "card.id"), "5e1");
    vigil_event_release(ev);
    /* the member's name elsewhere: as a string value, inside a string, nested deeper */
    ev = dec("{\"note\":\"acct\",\"x\":{\"acct\":1},\"s\":\"\\\"acct\\\":2\",\"acct\":3.00,\"ts\":1}", VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(key(ev, "acct"), "3.00");
    vigil_event_release(ev);
    /* a member name written with escapes is the same name (cJSON unescapes it);
     * its number key is the value's text as vigil writes it (as before issue 16) */
    ev = dec("{\"ts\":1,\"cust\\u006fmer_id\":5.0,\"acct\":\"s\"}", VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(key(ev, "customer_id"), "5");
    vigil_event_release(ev);
    /* typed slots: bool, null, object/array (missing), strings with escapes */
    ev = dec("{\"ts\":1,\"flag\":false,\"note\":null,\"amount\":{\"v\":1},\"customer_id\":\"a\\\"b\\u00e9\"}",
             VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_event_slot(ev, field_of("flag"))->type, VIGIL_T_BOOL);
    CU_ASSERT_EQUAL(vigil_event_slot(ev, field_of("note"))->type, VIGIL_T_NULL);
    CU_ASSERT_EQUAL(vigil_event_slot(ev, field_of("amount"))->type, VIGIL_T_MISSING);
    CU_ASSERT_STRING_EQUAL(key(ev, "customer_id"), "a\"b\xc3\xa9");
    CU_ASSERT_PTR_NULL(key(ev, "acct"));
    vigil_event_release(ev);
    /* keys: booleans as text, null and objects absent */
    ev = dec("{\"ts\":1,\"customer_id\":true,\"acct\":null,\"card\":{\"id\":{}}}", VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(key(ev, "customer_id"), "true");
    CU_ASSERT_PTR_NULL(key(ev, "acct"));
    CU_ASSERT_PTR_NULL(key(ev, "card.id"));
    vigil_event_release(ev);
    /* errors, with their messages */
    vigil_error err;
    const char *bad[][2] = {
        {"{\"ts\":1,", "invalid JSON near byte 7"},
        {"{\"ts\":1} x", "invalid JSON near byte 9: text after the event's value"},
        {"{\"ts\":1,\"note\":\"a\tb\"}", "invalid JSON near byte 17: a control character that is not escaped"},
        {"[1,2]", "expected a JSON object"},
        {"{\"ts\":\"yesterday\"}", "event time field 'ts' is not a valid time"},
        {"{\"id\":1}", "missing event time field (looked for 'ts')"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vigil_event *e2 = NULL;
        vigil_error_clear(&err);
        CU_ASSERT_NOT_EQUAL(vigil_event_decode_json(rs, NULL, bad[i][0], strlen(bad[i][0]), NULL, 0, &e2, &err),
                            VIGIL_OK);
        CU_ASSERT_PTR_NULL(e2);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad[i][1]));
        if (!strstr(err.msg, bad[i][1])) fprintf(stderr, "\n%s: got \"%s\"\n", bad[i][0], err.msg);
    }
}

/* ---- random events with a known truth ----------------------------------------------- */

typedef struct truth {
    int have;       /* the first member of this path was seen */
    int type;       /* VIGIL_T_* of the value (MISSING for object/array) */
    char text[96];  /* string: its decoded text; number: its raw text; bool: true/false */
} truth;

typedef struct gen { char *buf; size_t len, cap; } gen;

static void put(gen *g, const char *s) {
    size_t n = strlen(s);
    if (g->len + n + 1 > g->cap) {
        g->cap = (g->len + n + 1) * 2;
        g->buf = realloc(g->buf, g->cap);
    }
    memcpy(g->buf + g->len, s, n + 1);
    g->len += n;
}
static void ws(gen *g) {
    static const char *w[] = {"", "", "", " ", "\t", "\r\n ", "  "};
    put(g, w[below(7)]);
}

static const char *NUMS[] = {"0", "7", "-3", "1.0", "1e0", "1E+2", "2.50", "-0", "0.000123", "9007199254740993",
                             "12345678901234567891", "1e-7", "596", "3156"};

/* A random value; *t gets its truth; depth bounds nesting. `nest` names the
 * object's member names when it is an object (for card/a). */
static void gen_value(gen *g, truth *t, int depth, const char *const *nest, int nnest, truth *sub, int nsub);

static void gen_object(gen *g, int depth, const char *const *names, int nnames, truth *tr) {
    put(g, "{");
    int n = (int)below(7);
    for (int i = 0; i < n; i++) {
        if (i) put(g, ",");
        ws(g);
        int k = (int)below((unsigned)nnames + 2);
        const char *name = k < nnames ? names[k] : (k == nnames ? "other" : "x");
        char q[64];
        snprintf(q, sizeof q, "\"%s\"", name);
        put(g, q);
        ws(g);
        put(g, ":");
        ws(g);
        truth t = {0}, subt[2] = {{0}, {0}};
        static const char *const sub_card[] = {"bin", "id"}, *const sub_a[] = {"b"};
        int is_card = depth == 0 && strcmp(name, "card") == 0, is_a = depth == 0 && strcmp(name, "a") == 0;
        gen_value(g, &t, depth + 1, is_card ? sub_card : is_a ? sub_a : NULL, is_card ? 2 : is_a ? 1 : 0, subt,
                  2);
        ws(g);
        if (k < nnames && !tr[k].have) {
            tr[k] = t;
            tr[k].have = 1;
            if (is_card || is_a) {   /* the nested truths follow the first member of the name */
                tr[nnames + (is_card ? 0 : 2)] = subt[0];
                if (is_card) tr[nnames + 1] = subt[1];
            }
        }
    }
    put(g, "}");
}

static void gen_value(gen *g, truth *t, int depth, const char *const *nest, int nnest, truth *sub, int nsub) {
    unsigned r = below(nnest ? 3 : 10);
    if (nnest) r = r == 0 ? 8 : 9;   /* card/a: mostly the object */
    switch (r) {
    case 0: case 1: case 2: case 3: {
        const char *s = NUMS[below(sizeof NUMS / sizeof *NUMS)];
        put(g, s);
        t->type = VIGIL_T_NUM;
        snprintf(t->text, sizeof t->text, "%s", s);
        break;
    }
    case 4: case 5: {   /* strings, some with the names or escapes in them */
        static const char *raw[] = {"tx", "abc", "\\\"acct\\\":1", "customer_id", "a\\\\b", "\\u00e9t\\u00e9", ""};
        static const char *dec[] = {"tx", "abc", "\"acct\":1", "customer_id", "a\\b", "\xc3\xa9t\xc3\xa9", ""};
        unsigned k = below(7);
        char q[64];
        snprintf(q, sizeof q, "\"%s\"", raw[k]);
        put(g, q);
        t->type = VIGIL_T_STR;
        snprintf(t->text, sizeof t->text, "%s", dec[k]);
        break;
    }
    case 6:
        if (below(2)) {
            put(g, "true");
            snprintf(t->text, sizeof t->text, "true");
        } else {
            put(g, "false");
            snprintf(t->text, sizeof t->text, "false");
        }
        t->type = VIGIL_T_BOOL;
        break;
    case 7:
        put(g, "null");
        t->type = VIGIL_T_NULL;
        break;
    case 8:
        put(g, depth > 3 ? "[]" : below(2) ? "[1,{\"acct\":2},\"x\"]" : "[]");
        t->type = VIGIL_T_MISSING;
        break;
    default: {
        static const char *const none[] = {"acct", "customer_id"};
        truth tr[8] = {{0}};
        const char *const *names = nnest ? nest : none;
        int nn = nnest ? nnest : 2;
        if (depth > 3) {
            put(g, "{}");
        } else {
            gen_object(g, depth, names, nn, tr);
        }
        t->type = VIGIL_T_MISSING;
        for (int i = 0; i < nsub && i < nn; i++) sub[i] = tr[i];
        break;
    }
    }
}

static void check_key(const vigil_event *ev, const char *name, const truth *t, const char *js) {
    const char *k = key(ev, name);
    int want = t->have && (t->type == VIGIL_T_STR || t->type == VIGIL_T_NUM || t->type == VIGIL_T_BOOL);
    CU_ASSERT_EQUAL(k != NULL, want);
    if (k && want) CU_ASSERT_STRING_EQUAL(k, t->text);
    if ((k != NULL) != want || (k && want && strcmp(k, t->text) != 0))
        fprintf(stderr, "\nseed %llu: key %s of %s: got %s, want %s\n", (unsigned long long)seed0, name, js,
                k ? k : "(none)", want ? t->text : "(none)");
}

static void check_slot(const vigil_event *ev, const char *path, const truth *t, const char *js) {
    const vigil_value *v = vigil_event_slot(ev, field_of(path));
    int want = t->have ? t->type : VIGIL_T_MISSING;
    int ok = (int)v->type == want;
    if (ok && want == VIGIL_T_NUM) ok = v->u.num == strtod(t->text, NULL);
    if (ok && want == VIGIL_T_STR) ok = strlen(t->text) == v->len && memcmp(v->u.str, t->text, v->len) == 0;
    if (ok && want == VIGIL_T_BOOL) ok = v->u.b == (t->text[0] == 't');
    CU_ASSERT(ok);
    if (!ok) fprintf(stderr, "\nseed %llu: slot %s of %s: type %d, want %d\n", (unsigned long long)seed0, path, js,
                     (int)v->type, want);
}

static void test_random_events(void) {
    /* top-level names: 0 customer_id, 1 acct, 2 amount, 3 flag, 4 note, 5 ts, 6 id, 7 card, 8 a, 9 a.b,
     * 10 card.id (a literal dotted name); then the nested truths: 11 card.bin, 12 card.id, 13 a.b */
    static const char *const names[] = {"customer_id", "acct", "amount", "flag", "note", "ts", "id",
                                        "card", "a", "a.b", "card.id"};
    enum { NN = 11 };
    rng = seed0;
    gen g = {0};
    for (int it = 0; it < 20000; it++) {
        truth tr[NN + 3];
        memset(tr, 0, sizeof tr);
        g.len = 0;
        put(&g, "");
        ws(&g);
        gen_object(&g, 0, names, NN, tr);
        ws(&g);
        /* gen_object keeps nested truths at NN.. for card (bin, id) and a (b) */
        const char *js = g.buf;
        vigil_event *ev = NULL;
        vigil_error err;
        vigil_status st = vigil_event_decode_json(rs, NULL, js, g.len, NULL, 0, &ev, &err);
        const truth *ts = &tr[5];
        int64_t ms = 0;   /* the strings drawn are no RFC 3339 times; 1.2e19 is past the range */
        int time_ok = ts->have && ts->type == VIGIL_T_NUM &&
                      vigil_time_from_number(strtod(ts->text, NULL), VIGIL_TIME_AUTO, &ms) == VIGIL_OK;
        if (!time_ok) {
            CU_ASSERT_EQUAL(st, VIGIL_ENOTIME);
            if (st != VIGIL_ENOTIME) fprintf(stderr, "\nseed %llu: %s: status %d\n", (unsigned long long)seed0, js, st);
            vigil_event_release(ev);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(st, VIGIL_OK);
        CU_ASSERT_EQUAL(vigil_event_time(ev), ms);
        check_key(ev, "customer_id", &tr[0], js);
        check_key(ev, "acct", &tr[1], js);
        /* card.id: the literal dotted member wins, else the nested one under the first "card" object */
        truth cid = tr[10].have ? tr[10] : tr[12];
        if (!tr[10].have && (!tr[7].have || tr[7].type != VIGIL_T_MISSING)) cid.have = 0;
        check_key(ev, "card.id", &cid, js);
        check_slot(ev, "amount", &tr[2], js);
        check_slot(ev, "flag", &tr[3], js);
        check_slot(ev, "note", &tr[4], js);
        truth ab = tr[9].have ? tr[9] : tr[13], bin = tr[11];
        if (!tr[9].have && (!tr[8].have || tr[8].type != VIGIL_T_MISSING)) ab.have = 0;
        if (!tr[7].have || tr[7].type != VIGIL_T_MISSING) bin.have = 0;
        check_slot(ev, "a.b", &ab, js);
        check_slot(ev, "card.bin", &bin, js);
        /* id: its text, else the hash of the bytes */
        const truth *id = &tr[6];
        if (id->have && (id->type == VIGIL_T_STR || id->type == VIGIL_T_NUM || id->type == VIGIL_T_BOOL)) {
            CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), id->text);
        } else {
            unsigned char d[SHA256_DIGEST_LENGTH];
            char h[17];
            SHA256((const unsigned char *)js, g.len, d);
            for (int i = 0; i < 8; i++) snprintf(h + 2 * i, 3, "%02x", d[i]);
            CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), h);
        }
        vigil_event_release(ev);
    }
    free(g.buf);
}

/* ---- a bad line in the middle of a batch -------------------------------------------- */

typedef struct seen { int n; size_t line[8], off[8]; char msg[8][160]; } seen;

static void on_bad(void *ud, const vigil_batch_error *e) {
    seen *s = ud;
    if (s->n < 8) {
        s->line[s->n] = e->line;
        s->off[s->n] = e->offset;
        snprintf(s->msg[s->n], sizeof s->msg[0], "%.150s", e->msg);
    }
    s->n++;
}

static void test_batch_bad_mid(void) {
    /* line 2 invalid JSON, line 4 invalid UTF-8 (0xC0 at byte 2 of it), line 5 a control
     * character, line 6 text after the value; line 3 blank */
    const char body[] = "{\"ts\":1,\"acct\":1}\n"
                        "{\"ts\":2,\"acct\":}\n"
                        "\n"
                        "{\"ts\":\xc0\x80,\"acct\":3}\n"
                        "{\"ts\":4,\"note\":\"a\x01\",\"acct\":4}\n"
                        "{\"ts\":5,\"acct\":5} {}\r\n"
                        "{\"ts\":6,\"acct\":6.0}";
    size_t l1 = strlen("{\"ts\":1,\"acct\":1}\n"), l2 = strlen("{\"ts\":2,\"acct\":}\n");
    size_t l4 = strlen("{\"ts\":\xc0\x80,\"acct\":3}\n"), l5 = strlen("{\"ts\":4,\"note\":\"a\x01\",\"acct\":4}\n");
    size_t o2 = l1, o4 = l1 + l2 + 1, o5 = o4 + l4, o6 = o5 + l5;
    seen s = {0};
    vigil_batch_opts o = {.policy = VIGIL_BATCH_SKIP_BAD, .on_bad = on_bad, .ud = &s, .max_fields = 1000,
                          .max_depth = 32, .max_key_bytes = 1024};
    vigil_batch b;
    vigil_batch_error e;
    CU_ASSERT_EQUAL_FATAL(vigil_batch_decode(rs, &o, body, sizeof body - 1, &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 2);
    CU_ASSERT_EQUAL(b.lines, 6);
    CU_ASSERT_EQUAL(b.bad, 4);
    CU_ASSERT_EQUAL_FATAL(s.n, 4);
    CU_ASSERT_STRING_EQUAL(vigil_event_key(b.events[0], group_of("acct"), NULL), "1");
    CU_ASSERT_STRING_EQUAL(vigil_event_key(b.events[1], group_of("acct"), NULL), "6.0");
    size_t wl[4] = {2, 4, 5, 6}, wo[4] = {o2, o4 + 6, o5, o6};
    const char *wm[4] = {"invalid JSON near byte 15", "invalid UTF-8 at byte offset", "a control character",
                         "text after the event's value"};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(s.line[i], wl[i]);
        CU_ASSERT_EQUAL(s.off[i], wo[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(s.msg[i], wm[i]));
        if (s.line[i] != wl[i] || s.off[i] != wo[i] || !strstr(s.msg[i], wm[i]))
            fprintf(stderr, "\nbad %d: line %zu offset %zu \"%s\"\n", i, s.line[i], s.off[i], s.msg[i]);
    }
    char want[64];
    snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu: overlong encoding", o4 + 6);
    CU_ASSERT_STRING_EQUAL(s.msg[1], want);
    vigil_batch_release(&b);
    /* all or nothing: the first bad line, line 2, and nothing kept */
    o.policy = VIGIL_BATCH_STOP_AT_FIRST_BAD;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, body, sizeof body - 1, &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 2);
    CU_ASSERT_EQUAL(e.offset, o2);
    CU_ASSERT_EQUAL(b.n, 0);
    /* without the first two bad lines, the UTF-8 one is first */
    const char *rest = body + o4;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, rest, sizeof body - 1 - o4, &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 1);
    CU_ASSERT_EQUAL(e.offset, 6);
    CU_ASSERT_STRING_EQUAL(e.msg, "invalid UTF-8 at byte offset 6: overlong encoding");
}


/* ---- the batch's one pass (UTF-8 + shape) against the two passes it replaced -------- */

/* batch.c's shape() before issue 16, word for word. */
static void ref_shape(const char *a, const char *b, int max_depth, int max_fields, int *depth, int *fields) {
    int d = 0, md = 0, f = 0, in_str = 0;
    for (const char *p = a; p < b; p++) {
        unsigned char c = (unsigned char)*p;
        if (in_str) {
            if (c == '\\') p++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') {
            if (++d > md) md = d;
        } else if (c == '}' || c == ']') d--;
        else if (c == ':') f++;
        if (md > max_depth && f > max_fields) break;
    }
    *depth = md;
    *fields = f;
}

static void test_scan_reference(void) {
    static const char *const atoms[] = {"{", "}", "[", "]", ":", "\"", "\\", ",", "a", "12", " ", "\xc3\xa9",
                                        "\x80", "\xe0\x80", "\xf0\x9f\x98\x80", "\xed\xa0\x80", "\xc3",
                                        "\\\xc3\xa9", "\\\"", "\xff", "\t"};
    enum { NATOMS = sizeof atoms / sizeof *atoms };
    rng = seed0 ^ 0x5ca1ab1e;
    char line[256];
    for (int it = 0; it < 100000; it++) {
        size_t len = 0;
        int natoms = 1 + (int)below(40);
        for (int k = 0; k < natoms; k++) {
            /* mostly structure, sometimes a bad byte */
            unsigned r = below(100);
            const char *at = atoms[r < 85 ? below(12) : 12 + below(NATOMS - 12)];
            size_t al = strlen(at);
            if (len + al >= sizeof line) break;
            memcpy(line + len, at, al);
            len += al;
        }
        int maxd = (int)below(5), maxf = (int)below(5);   /* 0: not checked */
        vigil_batch_opts o = {.mode = VIGIL_BATCH_ONE_EVENT, .max_depth = maxd, .max_fields = maxf};
        vigil_batch b;
        vigil_batch_error e;
        vigil_status st = vigil_batch_decode(rs, &o, line, len, &b, &e);
        if (st == VIGIL_OK) vigil_batch_release(&b);
        /* the reference: blanks trimmed as the batch does, UTF-8 first, then the limits */
        const char *a = line, *z = line + len;
        while (a < z && (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n')) a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t' || z[-1] == '\r' || z[-1] == '\n')) z--;
        if (a == z) continue;   /* an empty body */
        char want[256] = "";
        size_t bad;
        const char *why;
        int depth, fields;
        if (!vigil_utf8_check(a, (size_t)(z - a), &bad, &why)) {
            snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu: %s", (size_t)(a - line) + bad, why);
        } else if (maxd || maxf) {
            ref_shape(a, z, maxd ? maxd : INT32_MAX, maxf ? maxf : INT32_MAX, &depth, &fields);
            if (maxd && depth > maxd)
                snprintf(want, sizeof want, "the event nests objects and arrays %d deep; at most %d are allowed "
                         "(limits.max_depth)", depth, maxd);
            else if (maxf && fields > maxf)
                snprintf(want, sizeof want, "the event has %d fields; at most %d are allowed (limits.max_fields)",
                         fields, maxf);
        }
        if (want[0]) {
            CU_ASSERT_EQUAL(st, VIGIL_EPARSE);
            CU_ASSERT_STRING_EQUAL(e.msg, want);
            if (strcmp(e.msg, want) != 0) {
                fprintf(stderr, "\nseed %llu, input %d: got \"%s\", want \"%s\"\n", (unsigned long long)seed0, it,
                        e.msg, want);
                return;
            }
        } else {
            CU_ASSERT(st != VIGIL_EPARSE || (!strstr(e.msg, "UTF-8") && !strstr(e.msg, "limits.")));
        }
    }
}

/* ---- json_text.c's pass against the one before issue 16 ------------------------------ */

/* vjson_text_bad before issue 16, word for word (without the member offsets). */
static size_t ref_text_bad(const char *buf, size_t len, size_t value_end, const char **why) {
    size_t i = value_end;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
    if (i < len) {
        *why = "text after the event's value";
        return i;
    }
    *why = "a control character that is not escaped";
    int in_str = 0;
    for (i = 0; i < value_end && i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (in_str) {
            if (c < 0x20) return i;
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return i;
        }
    }
    *why = NULL;
    return len;
}

static void test_text_reference(void) {
    static const char *const atoms[] = {"{", "}", "[", "]", ":", "\"", "\\", ",", "ab", "12", " ", "\t", "\n",
                                        "\x01", "\x1f", "\\\"", "\\\x01", "\xc3\xa9"};
    enum { NATOMS = sizeof atoms / sizeof *atoms };
    rng = seed0 ^ 0x7e47;
    char line[256];
    for (int it = 0; it < 100000; it++) {
        size_t len = 0;
        int natoms = 1 + (int)below(40);
        line[len++] = '{';
        for (int k = 0; k < natoms; k++) {
            unsigned r = below(100);
            const char *at = atoms[r < 90 ? below(13) : 13 + below(NATOMS - 13)];
            size_t al = strlen(at);
            if (len + al >= sizeof line) break;
            memcpy(line + len, at, al);
            len += al;
        }
        size_t vend = below(4) ? len : below((unsigned)len + 1);
        const char *w1, *w2;
        uint32_t colons[8];
        int nc = -1;
        size_t got = vjson_text_bad(line, len, vend, &w1, colons, 8, &nc), want = ref_text_bad(line, len, vend, &w2);
        int same_why = (!w1 && !w2) || (w1 && w2 && strcmp(w1, w2) == 0);
        CU_ASSERT_EQUAL(got, want);
        CU_ASSERT(same_why);
        if (got != want || !same_why) {
            fprintf(stderr, "\nseed %llu, input %d: got %zu, want %zu\n", (unsigned long long)seed0, it, got, want);
            return;
        }
        if (got < len) continue;
        /* the members' ':' at depth 1, by a plain walk */
        int depth = 0, in_str = 0, n = 0, ok = 1;
        uint32_t esc = 0;
        for (size_t i = 0; i < vend && ok; i++) {
            char c = line[i];
            if (in_str) {
                if (c == '\\') {
                    esc = VJSON_NAME_ESCAPED;
                    i++;
                } else if (c == '"') in_str = 0;
            } else if (c == '"') {
                in_str = 1;
                esc = 0;
            } else if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') depth--;
            else if (c == ':' && depth == 1 && n < 8) ok = colons[n++] == ((uint32_t)i | esc);
        }
        CU_ASSERT(ok && n == nc);
        if (!ok || n != nc) {
            fprintf(stderr, "\nseed %llu, input %d: member offsets differ\n", (unsigned long long)seed0, it);
            return;
        }
    }
}

/* ---- json_scan.c against cJSON: the same bytes through both paths ---------------------- */

static size_t diff_inputs, diff_scanned;

/* Decode js[0..len) with the scan on and off: the same status, message,
 * id, time, text, slots and keys. 0 when they differ (printed). */
static int diff_decode(const vigil_decode_opts *o, const char *js, size_t len) {
    vigil_event *a = NULL, *b = NULL;
    vigil_error ea, eb;
    vigil_error_clear(&ea);
    vigil_error_clear(&eb);
    vjs_doc sd;
    diff_inputs++;
    diff_scanned += (size_t)vjs_scan(js, len, &sd);
    vjs_enabled = 1;
    vigil_status sa = vigil_event_decode_json(rs, o, js, len, NULL, 1, &a, &ea);
    vjs_enabled = 0;
    vigil_status sb = vigil_event_decode_json(rs, o, js, len, NULL, 1, &b, &eb);
    vjs_enabled = 1;
    int ok = sa == sb && strcmp(ea.msg, eb.msg) == 0 && (a != NULL) == (b != NULL);
    if (ok && a) {
        size_t la, lb;
        const char *ja = vigil_event_json(a, &la), *jb = vigil_event_json(b, &lb);
        ok = strcmp(vigil_event_id(a), vigil_event_id(b)) == 0 && vigil_event_time(a) == vigil_event_time(b) &&
             la == lb && memcmp(ja, jb, la) == 0;
        for (int f = 0; ok && f < vigil_ruleset_field_count(rs); f++) {
            const vigil_value *x = vigil_event_slot(a, f), *y = vigil_event_slot(b, f);
            ok = x->type == y->type;
            if (ok && x->type == VIGIL_T_NUM) ok = memcmp(&x->u.num, &y->u.num, sizeof(double)) == 0;
            if (ok && x->type == VIGIL_T_STR) ok = x->len == y->len && memcmp(x->u.str, y->u.str, x->len) == 0;
            if (ok && x->type == VIGIL_T_BOOL) ok = x->u.b == y->u.b;
        }
        for (int g = 0; ok && g < vigil_ruleset_group_count(rs); g++) {
            size_t ka = 0, kb = 0;
            const char *x = vigil_event_key(a, g, &ka), *y = vigil_event_key(b, g, &kb);
            ok = (x != NULL) == (y != NULL) && (!x || (ka == kb && memcmp(x, y, ka) == 0));
        }
    }
    if (!ok)
        fprintf(stderr, "\nscan and cJSON differ on %.*s: %d \"%s\" / %d \"%s\"\n", (int)(len > 300 ? 300 : len), js,
                sa, ea.msg, sb, eb.msg);
    vigil_event_release(a);
    vigil_event_release(b);
    return ok;
}

static const vigil_decode_opts *diff_opts(int k) {
    static vigil_decode_opts o[4] = {
        {.time_fields = {"ts"}, .ntime_fields = 1, .id_fields = {"id"}, .nid_fields = 1},
        {.time_fields = {"when.at", "ts"}, .ntime_fields = 2, .id_fields = {"card.id", "acct", "id"}, .nid_fields = 3,
         .type_default = "tx"},
        {.time_fields = {"ts"}, .ntime_fields = 1, .id_fields = {"note", "id"}, .nid_fields = 2,
         .time_format = VIGIL_TIME_S},
        {.time_fields = {"note", "ts"}, .ntime_fields = 2, .id_fields = {"a.b"}, .nid_fields = 1,
         .time_format = VIGIL_TIME_RFC3339},
    };
    return &o[k & 3];
}

/* Generated events (as test_random_events), each also cut short, with a
 * byte changed, and wrapped in blanks. */
static void test_scan_generated(void) {
    static const char *const names[] = {"customer_id", "acct", "amount", "flag", "note", "ts", "id",
                                        "card", "a", "a.b", "card.id", "when"};
    rng = seed0 ^ 0xd1ff;
    gen g = {0};
    int bad = 0;
    diff_inputs = diff_scanned = 0;
    static const char flips[] = "{}[]:,\"\\ 0-.eE+tfn\x01\x7f\xc3";
    for (int it = 0; it < 20000 && bad < 5; it++) {
        truth tr[16];
        memset(tr, 0, sizeof tr);
        g.len = 0;
        put(&g, "");
        ws(&g);
        gen_object(&g, 0, names, 12, tr);
        ws(&g);
        const vigil_decode_opts *o = diff_opts((int)below(4));
        bad += !diff_decode(o, g.buf, g.len);
        size_t cut = below((unsigned)g.len + 1);
        bad += !diff_decode(o, g.buf, cut);
        char *cp = malloc(g.len + 1);
        memcpy(cp, g.buf, g.len + 1);
        cp[below((unsigned)g.len)] = flips[below(sizeof flips - 1)];
        bad += !diff_decode(o, cp, g.len);
        free(cp);
    }
    free(g.buf);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(diff_scanned * 4 > diff_inputs);   /* the scan's path is taken, not only declined */
    printf("(%zu inputs, %zu through the scan) ", diff_inputs, diff_scanned);
}

/* Fixed inputs at the scan's edges: numbers, literals, blanks, limits. */
static void test_scan_edges(void) {
    static const char *const ev[] = {
        "{\"ts\":1,\"acct\":0}", "{\"ts\":1,\"acct\":-0}", "{\"ts\":1,\"acct\":01}", "{\"ts\":1,\"acct\":+1}",
        "{\"ts\":1,\"acct\":1.}", "{\"ts\":1,\"acct\":.5}", "{\"ts\":1,\"acct\":1e}", "{\"ts\":1,\"acct\":1e+}",
        "{\"ts\":1,\"acct\":1E-0}", "{\"ts\":1,\"acct\":1e400}", "{\"ts\":1,\"acct\":-1e-400}",
        "{\"ts\":1,\"acct\":123456789012345678901234567890123456789012345678901234567890123}",
        "{\"ts\":1,\"acct\":1234567890123456789012345678901234567890123456789012345678901234}",
        "{\"ts\":1,\"acct\":0.1e1,\"amount\":1.7976931348623157e308,\"note\":4.9e-324}",
        "{\"ts\":1,\"acct\":tru}", "{\"ts\":1,\"acct\":true}", "{\"ts\":1,\"acct\":nul}", "{\"ts\":1,\"flag\":false }",
        "\xef\xbb\xbf{\"ts\":1,\"acct\":1}", "\x0c{\"ts\":1,\"acct\":1}", "{\"ts\":1,\"acct\":1}\x0b",
        "{\"ts\":1,\"acct\":1}\r\n", " \t{ \"ts\" :1 ,\"acct\":\"x\" } ", "{\"ts\":1,\"acct\":\"a\tb\"}",
        "{\"ts\":1,\"acct\":\"\xc3\xa9\xff\"}", "{\"ts\":1,\"acct\":\"a\\/b\"}", "{\"ts\":1,\"acct\":[1,{\"x\":[]}]}",
        "{\"ts\":1,\"card\":{\"id\":5,\"id\":6},\"card\":{\"id\":7}}", "{\"ts\":1,\"card\":{}}", "{}", "{\"ts\":1}",
        "{\"ts\":1,}", "{\"ts\":1 \"acct\":2}", "{\"ts\":1,\"acct\":2}}", "{\"ts\":1,\"acct\":2", "[]", "\"x\"", "",
        "{\"ts\":\"2018-04-01T00:00:31Z\",\"acct\":1}", "{\"ts\":1e11,\"acct\":1}", "{\"ts\":9e16,\"acct\":1}",
        "{\"when\":{\"at\":3},\"ts\":1,\"acct\":2}", "{\"\":1,\"ts\":1,\"acct\":2}", "{\"a.b\":2,\"ts\":1,\"acct\":3}",
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof ev / sizeof *ev; i++)
        for (int k = 0; k < 4; k++) bad += !diff_decode(diff_opts(k), ev[i], strlen(ev[i]));
    /* nesting and members at the scan's limits and one past them */
    char buf[8192];
    for (int depth = VJS_MAX_DEPTH - 2; depth <= VJS_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"ts\":1,\"acct\":1,\"x\":");
        for (int k = 1; k < depth; k++) n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"y\":");
        n += (size_t)snprintf(buf + n, sizeof buf - n, "2");
        for (int k = 0; k < depth; k++) buf[n++] = '}';
        bad += !diff_decode(diff_opts(0), buf, n);
    }
    for (int members = VJS_MAX_MEMBERS - 2; members <= VJS_MAX_MEMBERS + 1; members++) {
        size_t n = (size_t)snprintf(buf, sizeof buf, "{\"ts\":1");
        for (int k = 1; k < members - 1; k++) n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"m%d\":%d", k, k);
        n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"acct\":1.50}");
        bad += !diff_decode(diff_opts(0), buf, n);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Every line of the fuzz corpus of the JSON decoder (tests/fuzz/corpus/json). */
static void test_scan_corpus(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s/tests/fuzz/corpus/json", VIGIL_SOURCE_DIR);
    FILE *ls = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ls);
    char name[256];
    int bad = 0, files = 0;
    diff_inputs = diff_scanned = 0;
    while (fgets(name, sizeof name, ls) && bad < 5) {
        name[strcspn(name, "\n")] = '\0';
        char path[600];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/json/%s", VIGIL_SOURCE_DIR, name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        static char data[1 << 20];
        size_t n = fread(data, 1, sizeof data, f);
        fclose(f);
        files++;
        for (size_t a = 0; a < n;) {
            const char *nl = memchr(data + a, '\n', n - a);
            size_t b = nl ? (size_t)(nl - data) : n;
            for (int k = 0; k < 4; k++) bad += !diff_decode(diff_opts(k), data + a, b - a);
            a = b + 1;
        }
    }
    pclose(ls);
    CU_ASSERT(files > 100);
    CU_ASSERT_EQUAL(bad, 0);
    printf("(%d files, %zu inputs, %zu through the scan) ", files, diff_inputs, diff_scanned);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("decode_json", setup, teardown);
    CU_add_test(s, "arena: reset per event, nested begin", test_arena_reset);
    CU_add_test(s, "arena: events bigger than the chunk", test_arena_big_event);
    CU_add_test(s, "arena: a tree parsed outside it survives decodes", test_outside_arena);
    CU_add_test(s, "arena: two threads decoding at once", test_arena_threads);
    CU_add_test(s, "duplicates, nested paths, raw number text, escapes, errors", test_fixed_cases);
    CU_add_test(s, "20,000 random events: slots, keys, ids, times as generated", test_random_events);
    CU_add_test(s, "bad lines in the middle of a batch: line, offset, message", test_batch_bad_mid);
    CU_add_test(s, "100,000 random lines: UTF-8 and limits as the two passes before", test_scan_reference);
    CU_add_test(s, "100,000 random texts: the text check as before, the members' ':' found", test_text_reference);
    CU_add_test(s, "scan vs cJSON: 60,000 generated, cut and changed events", test_scan_generated);
    CU_add_test(s, "scan vs cJSON: numbers, literals, blanks, limits", test_scan_edges);
    CU_add_test(s, "scan vs cJSON: every line of the fuzz corpus", test_scan_corpus);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
