/* test_batch.c — the one NDJSON batch decoder (server/ingest/batch.c).
 *
 * HTTP, core NATS and JetStream all split and decode their bodies through
 * vigil_batch_decode, so its behaviour is theirs: one event or NDJSON lines,
 * blank lines and CRLF, the empty body, all-or-nothing with the first bad
 * line named, skip-and-report with a callback, the event limit (HTTP's 413),
 * and the UTF-8 check of issue 10 with its exact byte offsets. The UTF-8
 * validator is also checked against a slow reference (decode each code
 * point, then test the RFC 3629 ranges) over random byte strings drawn from
 * the bytes where UTF-8 has its edges (xorshift64*, seed 20261121). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "vt_rand.h"
#include "vigil/event.h"
#include "vigil/rules.h"
#include "batch.h"

static vigil_ruleset *rs;

static int setup(void) {
    const char *src = "rule{ name='big', key='k', pattern=begin('a'):where{ amount=gt(100) } }";
    vigil_error errs[2];
    int nerrs = 0;
    if (vigil_rules_load_string("batch.lua", src, strlen(src), NULL, &rs, errs, 2, &nerrs) != VIGIL_OK) {
        fprintf(stderr, "ruleset: %s\n", errs[0].msg);
        return 1;
    }
    return 0;
}

static int teardown(void) {
    vigil_ruleset_release(rs);
    return 0;
}

#define EV(id) "{\"id\":\"" id "\",\"k\":\"u\",\"ts\":1000,\"amount\":5}"

static vigil_status decode(vigil_batch_mode mode, vigil_batch_policy pol, const char *body, size_t len,
                           vigil_batch *b, vigil_batch_error *e) {
    vigil_batch_opts o = {.mode = mode, .policy = pol};
    return vigil_batch_decode(rs, &o, body, len, b, e);
}

static int is_empty(const vigil_batch *b) { return b->n == 0 && b->events == NULL && b->cap == 0; }

/* ---- shapes of a body -------------------------------------------------------------- */

static void test_single_event(void) {
    vigil_batch b;
    vigil_batch_error e;
    const char *body = "  " EV("a") "\r\n";
    CU_ASSERT_EQUAL_FATAL(decode(VIGIL_BATCH_ONE_EVENT, 0, body, strlen(body), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(b.n, 1);
    CU_ASSERT_EQUAL(b.lines, 1);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[0]), "a");
    CU_ASSERT_STRING_EQUAL(vigil_event_key(b.events[0], 0, NULL), "u");
    CU_ASSERT_EQUAL(vigil_event_time(b.events[0]), 1000000);   /* auto: seconds */
    CU_ASSERT_EQUAL(e.status, VIGIL_OK);
    vigil_batch_release(&b);
    CU_ASSERT(is_empty(&b));
    vigil_batch_release(&b);   /* twice is fine */
    vigil_batch_release(NULL);
    /* the same as a one-line NDJSON body, without a final newline */
    body = EV("a");
    CU_ASSERT_EQUAL_FATAL(decode(VIGIL_BATCH_LINES, 0, body, strlen(body), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 1);
    vigil_batch_release(&b);
    /* NULL options: LINES, all or nothing */
    CU_ASSERT_EQUAL_FATAL(vigil_batch_decode(rs, NULL, body, strlen(body), &b, NULL), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 1);
    vigil_batch_release(&b);
}

static const char pretty[] = "\n"
                             "{\n"
                             "  \"id\": \"p\",\n"
                             "  \"k\": \"u\",\n"
                             "  \"ts\": 5000\n"
                             "}\n\n";

static void test_pretty_printed(void) {
    vigil_batch b;
    vigil_batch_error e;
    CU_ASSERT_EQUAL_FATAL(decode(VIGIL_BATCH_ONE_EVENT, 0, pretty, strlen(pretty), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(b.n, 1);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[0]), "p");
    CU_ASSERT_EQUAL(vigil_event_time(b.events[0]), 5000000);
    vigil_batch_release(&b);
    /* as NDJSON it is a bad line 2 ("{"), offset 1 */
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, pretty, strlen(pretty), &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 2);
    CU_ASSERT_EQUAL(e.offset, 1);
    CU_ASSERT_EQUAL(e.status, VIGIL_EPARSE);
    CU_ASSERT(strlen(e.msg) > 0);
    CU_ASSERT(is_empty(&b));
    /* ONE_EVENT: a decode error is line 1, offset 0 */
    const char *broken = "\n{\n  \"id\": \"p\",\n";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, broken, strlen(broken), &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 1);
    CU_ASSERT_EQUAL(e.offset, 0);
}

static void test_ndjson_blank_crlf(void) {
    vigil_batch b;
    vigil_batch_error e;
    const char *body = "\r\n" EV("a") "\r\n\r\n  \n" EV("b") "\r\n\t\r\n " EV("c") " \t\r\n\n";
    CU_ASSERT_EQUAL_FATAL(decode(VIGIL_BATCH_LINES, 0, body, strlen(body), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(b.n, 3);
    CU_ASSERT_EQUAL(b.lines, 3);
    CU_ASSERT_EQUAL(b.bad, 0);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[0]), "a");
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[1]), "b");
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[2]), "c");
    /* the event's text is the trimmed line */
    size_t jl;
    const char *js = vigil_event_json(b.events[2], &jl);
    CU_ASSERT_EQUAL(jl, strlen(EV("c")));
    CU_ASSERT_NSTRING_EQUAL(js, EV("c"), jl);
    /* handing references on: the caller NULLs the entry it took */
    vigil_event *taken = b.events[1];
    b.events[1] = NULL;
    vigil_batch_release(&b);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(taken), "b");
    vigil_event_release(taken);
}

static void test_empty_body(void) {
    vigil_batch b;
    vigil_batch_error e;
    const char *bodies[] = {"", "   ", "\n", "\r\n\r\n", " \t\n\n \r\n"};
    for (int m = 0; m < 2; m++) {
        for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
            CU_ASSERT_EQUAL(decode(m, 0, bodies[i], strlen(bodies[i]), &b, &e), VIGIL_EPARSE);
            CU_ASSERT_STRING_EQUAL(e.msg, "empty body: expected a JSON event or NDJSON lines");
            CU_ASSERT_EQUAL(e.line, 0);
            CU_ASSERT_EQUAL(e.status, VIGIL_EPARSE);
            CU_ASSERT(is_empty(&b));
        }
    }
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, NULL, 0, &b, &e), VIGIL_EPARSE);
    /* NATS: an empty message is nothing, not an error */
    vigil_batch_opts o = {.policy = VIGIL_BATCH_SKIP_BAD, .empty_ok = 1};
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, "\n\n", 2, &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 0);
    CU_ASSERT_EQUAL(b.lines, 0);
    vigil_batch_release(&b);
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, NULL, 0, &b, NULL), VIGIL_OK);
    vigil_batch_release(&b);
    /* bad arguments */
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, NULL, 3, &b, &e), VIGIL_EINVAL);
    CU_ASSERT_EQUAL(e.status, VIGIL_EINVAL);
    CU_ASSERT_EQUAL(vigil_batch_decode(NULL, &o, "{}", 2, &b, &e), VIGIL_EINVAL);
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, "{}", 2, NULL, &e), VIGIL_EINVAL);
}

/* ---- bad lines ----------------------------------------------------------------------- */

static void count_call(void *ud, const vigil_batch_error *e) { (*(int *)ud)++; }

static void test_stop_at_first_bad(void) {
    vigil_batch b;
    vigil_batch_error e;
    const char *l1 = EV("a") "\n\n";
    const char *body = EV("a") "\n\n{\"id\":\"b\",\"k\":\n" EV("c") "\n{\"oops\n";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, body, strlen(body), &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 3);
    CU_ASSERT_EQUAL(e.offset, strlen(l1));
    CU_ASSERT(is_empty(&b));
    CU_ASSERT_EQUAL(b.lines, 0);
    /* the reasons of the decoder come through */
    const char *nokey = EV("a") "\n{\"id\":\"b\",\"ts\":1}\n";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, nokey, strlen(nokey), &b, &e), VIGIL_ENOKEY);
    CU_ASSERT_EQUAL(e.line, 2);
    CU_ASSERT_EQUAL(e.status, VIGIL_ENOKEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "key"));
    const char *notime = "{\"id\":\"b\",\"k\":\"u\"}";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, notime, strlen(notime), &b, &e), VIGIL_ENOTIME);
    CU_ASSERT_EQUAL(e.line, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "time"));
    /* text after a line's JSON value: a bad line, not an event whose text
     * (quoted in its alerts' evidence) is not JSON (found by fuzz_http) */
    const char *trailing = EV("a") "\n" EV("b") " x}\n" EV("c") "\n";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, trailing, strlen(trailing), &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "after"));
    CU_ASSERT(is_empty(&b));
    const char *one = EV("a") " {}";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, one, strlen(one), &b, &e), VIGIL_EPARSE);
    CU_ASSERT(is_empty(&b));
    const char *spaces = EV("a") " \t\r\n";   /* JSON whitespace after it is fine */
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, spaces, strlen(spaces), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 1);
    vigil_batch_release(&b);
    /* control characters cJSON accepts and JSON does not: NUL (it cut the
     * alert's evidence there: found by fuzz_http), others inside a string,
     * or outside one where they are not whitespace; escaped they are fine */
    static const char *const bad_ctl[] = {"{\"id\":\"a\",\"k\":\"u\",\"ts\":1000,\"x\":\"a\0b\"}",
                                          "{\"id\":\"a\",\"k\":\"u\",\"ts\":1000,\"x\":\"a\x01\"}",
                                          "{\"id\":\"a\",\"k\":\"u\",\"ts\":1000,\"x\":\"a\tb\"}",
                                          "{\"id\":\"a\",\"k\":\"u\",\"ts\":1000,\"x\":\x01 1}"};
    static const size_t bad_len[] = {38, 37, 38, 36};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, bad_ctl[i], bad_len[i], &b, &e), VIGIL_EPARSE);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "control character"));
        CU_ASSERT(is_empty(&b));
    }
    const char *escaped = "{\"id\":\"a\",\"k\":\"u\",\"ts\":1000,\"x\":\"a\\u0000\\t\\\"\\\\\"}";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, escaped, strlen(escaped), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 1);
    vigil_batch_release(&b);
    /* the callback is not called under STOP_AT_FIRST_BAD */
    int calls = 0;
    vigil_batch_opts o = {.on_bad = count_call, .ud = &calls};
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, nokey, strlen(nokey), &b, NULL), VIGIL_ENOKEY);
    CU_ASSERT_EQUAL(calls, 0);
}

typedef struct seen {
    int n;
    size_t line[8], offset[8];
    vigil_status status[8];
    char msg[8][512];
} seen;

static void on_bad(void *ud, const vigil_batch_error *e) {
    seen *s = ud;
    if (s->n < 8) {
        s->line[s->n] = e->line;
        s->offset[s->n] = e->offset;
        s->status[s->n] = e->status;
        snprintf(s->msg[s->n], sizeof s->msg[0], "%s", e->msg);
    }
    s->n++;
}

static void test_skip_bad(void) {
    vigil_batch b;
    vigil_batch_error e;
    seen s = {0};
    const char *l1 = EV("a") "\r\n";
    const char *l2 = "not json\n";
    const char *l3 = "\n";
    const char *l4 = "{\"id\":\"x\",\"ts\":1}\n";
    const char *l5 = EV("d") "\n";
    const char *l6 = "  {\"id\":\"e\",\"k\":\"u\",\"ts\":1,\"note\":\"caf\xC3\xA9 \xC0\xAF\"}\n";
    const char *l7 = EV("f");
    char body[512];
    snprintf(body, sizeof body, "%s%s%s%s%s%s%s", l1, l2, l3, l4, l5, l6, l7);
    vigil_batch_opts o = {.policy = VIGIL_BATCH_SKIP_BAD, .on_bad = on_bad, .ud = &s};
    CU_ASSERT_EQUAL_FATAL(vigil_batch_decode(rs, &o, body, strlen(body), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(b.n, 3);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[0]), "a");
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[1]), "d");
    CU_ASSERT_STRING_EQUAL(vigil_event_id(b.events[2]), "f");
    CU_ASSERT_EQUAL(b.lines, 6);
    CU_ASSERT_EQUAL(b.bad, 3);
    CU_ASSERT_EQUAL(b.bad_nokey, 1);
    CU_ASSERT_EQUAL_FATAL(s.n, 3);
    size_t o2 = strlen(l1), o4 = o2 + strlen(l2) + strlen(l3), o6 = o4 + strlen(l4) + strlen(l5);
    CU_ASSERT_EQUAL(s.line[0], 2);
    CU_ASSERT_EQUAL(s.offset[0], o2);
    CU_ASSERT_EQUAL(s.status[0], VIGIL_EPARSE);
    CU_ASSERT_EQUAL(s.line[1], 4);
    CU_ASSERT_EQUAL(s.offset[1], o4);
    CU_ASSERT_EQUAL(s.status[1], VIGIL_ENOKEY);
    /* line 6: the invalid byte, not the line, is the offset */
    size_t bad6 = o6 + (size_t)(strstr(l6, "\xC0") - l6);
    char want[128];
    snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu: overlong encoding", bad6);
    CU_ASSERT_EQUAL(s.line[2], 6);
    CU_ASSERT_EQUAL(s.offset[2], bad6);
    CU_ASSERT_EQUAL(s.status[2], VIGIL_EPARSE);
    CU_ASSERT_STRING_EQUAL(s.msg[2], want);
    vigil_batch_release(&b);
    /* every line bad: OK with no events (the message had only bad lines) */
    const char *all_bad = "x\ny\n";
    s.n = 0;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, all_bad, strlen(all_bad), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 0);
    CU_ASSERT_EQUAL(b.bad, 2);
    CU_ASSERT_EQUAL(s.n, 2);
    vigil_batch_release(&b);
    /* no callback: still counted */
    o.on_bad = NULL;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, all_bad, strlen(all_bad), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.bad, 2);
    vigil_batch_release(&b);
}

static void test_too_many_lines(void) {
    vigil_batch b;
    vigil_batch_error e;
    const char *body = EV("a") "\n\n" EV("b") "\n" EV("c") "\n";
    vigil_batch_opts o = {.max_events = 2};
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, body, strlen(body), &b, &e), VIGIL_ETOOBIG);
    CU_ASSERT_EQUAL(e.status, VIGIL_ETOOBIG);
    CU_ASSERT_EQUAL(e.line, 4);
    CU_ASSERT_EQUAL(e.offset, strlen(EV("a") "\n\n" EV("b") "\n"));
    CU_ASSERT_STRING_EQUAL(e.msg, "more than 2 events in one batch");
    CU_ASSERT(is_empty(&b));
    /* exactly at the limit */
    o.max_events = 3;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, body, strlen(body), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 3);
    vigil_batch_release(&b);
    /* the limit is checked before any line: it wins over a bad line 1, under either policy */
    const char *bad_first = "nope\n" EV("a") "\n" EV("b");
    o.max_events = 2;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, bad_first, strlen(bad_first), &b, &e), VIGIL_ETOOBIG);
    CU_ASSERT_EQUAL(e.line, 3);
    o.policy = VIGIL_BATCH_SKIP_BAD;
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, bad_first, strlen(bad_first), &b, &e), VIGIL_ETOOBIG);
    /* ONE_EVENT counts the body as one event, however many lines it has */
    o = (vigil_batch_opts){.mode = VIGIL_BATCH_ONE_EVENT, .max_events = 1};
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, &o, pretty, strlen(pretty), &b, &e), VIGIL_OK);
    vigil_batch_release(&b);
    /* the default limit */
    size_t n = VIGIL_BATCH_MAX_EVENTS_DEFAULT + 1;
    char *big = malloc(3 * n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    for (size_t i = 0; i < n; i++) memcpy(big + 3 * i, "{}\n", 3);
    CU_ASSERT_EQUAL(vigil_batch_decode(rs, NULL, big, 3 * n, &b, &e), VIGIL_ETOOBIG);
    CU_ASSERT_EQUAL(e.line, n);
    CU_ASSERT_EQUAL(e.offset, 3 * (n - 1));
    free(big);
}

static int fail_after = -1;
static void *failing_realloc(void *p, size_t n) {
    if (fail_after == 0) return NULL;
    if (fail_after > 0) fail_after--;
    return realloc(p, n);
}

static void test_out_of_memory(void) {
    vigil_batch b;
    vigil_batch_error e;
    const char *body = EV("a") "\n" EV("b") "\n";
    vigil_batch_realloc = failing_realloc;
    fail_after = 0;
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, VIGIL_BATCH_SKIP_BAD, body, strlen(body), &b, &e), VIGIL_ENOMEM);
    CU_ASSERT_EQUAL(e.status, VIGIL_ENOMEM);
    CU_ASSERT_EQUAL(e.line, 0);
    CU_ASSERT(is_empty(&b));
    fail_after = -1;
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, VIGIL_BATCH_SKIP_BAD, body, strlen(body), &b, &e), VIGIL_OK);
    CU_ASSERT_EQUAL(b.n, 2);
    vigil_batch_release(&b);
    vigil_batch_realloc = realloc;
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

/* Body: a good line 1, then line 2 = prefix + bad + suffix. Decoding must
 * fail at line 2, offset strlen(line 1) + strlen(prefix), with `why`. */
static void expect_utf8(const char *bad, const char *suffix, const char *why) {
    const char *l1 = EV("a") "\r\n";
    const char *prefix = "{\"id\":\"b\",\"k\":\"";
    char body[256], want[160];
    int len = snprintf(body, sizeof body, "%s%s%s%s\n", l1, prefix, bad, suffix);
    size_t off = strlen(l1) + strlen(prefix);
    snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu: %s", off, why);
    vigil_batch b;
    vigil_batch_error e;
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, body, (size_t)len, &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.status, VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 2);
    CU_ASSERT_EQUAL(e.offset, off);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
    if (e.offset != off || strcmp(e.msg, want)) fprintf(stderr, "\n  got %zu '%s', want '%s'\n", e.offset, e.msg, want);
    CU_ASSERT(is_empty(&b));
}

static void test_invalid_utf8(void) {
    const char *tail = "\",\"ts\":1}";
    expect_utf8("\x80", tail, "unexpected continuation byte");            /* lone continuation */
    expect_utf8("\xBF", tail, "unexpected continuation byte");
    expect_utf8("\xC0\xAF", tail, "overlong encoding");                    /* '/' in two bytes */
    expect_utf8("\xC1\xBF", tail, "overlong encoding");
    expect_utf8("\xE0\x80\xAF", tail, "overlong encoding");
    expect_utf8("\xF0\x80\x80\xAF", tail, "overlong encoding");
    expect_utf8("\xED\xA0\x80", tail, "UTF-16 surrogate");                 /* U+D800 */
    expect_utf8("\xED\xBF\xBF", tail, "UTF-16 surrogate");                 /* U+DFFF */
    expect_utf8("\xF4\x90\x80\x80", tail, "code point above U+10FFFF");    /* U+110000 */
    expect_utf8("\xF5\x80\x80\x80", tail, "byte never used in UTF-8 (0xF5..0xFF)");
    expect_utf8("\xFF", tail, "byte never used in UTF-8 (0xF5..0xFF)");
    expect_utf8("\xC3" "a", tail, "truncated sequence");                   /* 2-byte cut short */
    expect_utf8("\xE2\x82" "a", tail, "truncated sequence");
    expect_utf8("\xF0\x9F\x98" "a", tail, "truncated sequence");
    expect_utf8("\xE2\x82", "", "truncated sequence");                     /* at the end of the line */
    expect_utf8("\xE2\x82", "\r", "truncated sequence");                   /* ... before CRLF */
    expect_utf8("\xF0\x9F", "", "truncated sequence");
    expect_utf8("\xC3", "", "truncated sequence");

    /* a sequence cut by the end of the body */
    const char *l1 = EV("a") "\n";
    char body[128];
    int len = snprintf(body, sizeof body, "%s{\"k\":\"\xE2\x82", l1);
    vigil_batch b;
    vigil_batch_error e;
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_LINES, 0, body, (size_t)len, &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.offset, (size_t)len - 2);
    CU_ASSERT_EQUAL(e.line, 2);

    /* ONE_EVENT: the line of the byte within the pretty-printed event */
    const char *p = "{\n  \"id\": \"p\",\n  \"k\": \"\xED\xA0\x80\",\n  \"ts\": 5000\n}\n";
    CU_ASSERT_EQUAL(decode(VIGIL_BATCH_ONE_EVENT, 0, p, strlen(p), &b, &e), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(e.line, 3);
    CU_ASSERT_EQUAL(e.offset, (size_t)(strchr(p, '\xED') - p));
    char want[96];
    snprintf(want, sizeof want, "invalid UTF-8 at byte offset %zu: UTF-16 surrogate", e.offset);
    CU_ASSERT_STRING_EQUAL(e.msg, want);
}

static void test_valid_utf8(void) {
    /* é, €, 😀, and the edges: U+0080, U+07FF, U+0800, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF */
    const char *texts[] = {"caf\xC3\xA9", "\xE2\x82\xAC" "5", "\xF0\x9F\x98\x80",
                           "\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        char body[256];
        int len = snprintf(body, sizeof body, EV("a") "\n{\"id\":\"b\",\"k\":\"%s\",\"ts\":1,\"note\":\"%s\"}\n",
                           texts[i], texts[i]);
        vigil_batch b;
        vigil_batch_error e;
        CU_ASSERT_EQUAL_FATAL(decode(VIGIL_BATCH_LINES, 0, body, (size_t)len, &b, &e), VIGIL_OK);
        CU_ASSERT_EQUAL_FATAL(b.n, 2);
        CU_ASSERT_STRING_EQUAL(vigil_event_key(b.events[1], 0, NULL), texts[i]);
        vigil_batch_release(&b);
        CU_ASSERT(vigil_utf8_check(texts[i], strlen(texts[i]), NULL, NULL));
    }
}

/* The slow reference: decode one code point at a time, then check the
 * ranges of RFC 3629 (length 1..4, no overlong form, no surrogate, at most
 * U+10FFFF). Returns the offset of the first bad sequence's first byte, or
 * len when s is valid. */
static size_t ref_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xE0) == 0xC0) { n = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { n = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { n = 4; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (i + n > len) return i;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += n;
    }
    return len;
}

static uint64_t rng = 20261121;
static uint64_t next_rand(void) { return vt_xorshift(&rng); }

static void test_utf8_reference(void) {
    static const unsigned char alphabet[] = {'a', '"', 0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                                             0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3,
                                             0xF4, 0xF5, 0xF7, 0xF8, 0xFF};
    unsigned char buf[40];
    int mismatches = 0, valid = 0;
    for (int iter = 0; iter < 300000; iter++) {
        size_t len = (size_t)(next_rand() % sizeof buf);
        int ascii_run = (int)(next_rand() % 3);   /* a third: long ASCII runs for the 8-byte path */
        for (size_t i = 0; i < len; i++) {
            uint64_t r = next_rand();
            buf[i] = ascii_run == 0 && (r & 7) ? 'x' : alphabet[(r >> 8) % sizeof alphabet];
        }
        size_t want = ref_utf8(buf, len), bad = (size_t)-1;
        const char *why = NULL;
        int ok = vigil_utf8_check((const char *)buf, len, &bad, &why);
        int agree = ok ? want == len : (want == bad && why != NULL);
        valid += ok;
        if (!agree && mismatches++ < 5) {
            fprintf(stderr, "\n  mismatch (len %zu): ok %d bad %zu, reference %zu:", len, ok, bad, want);
            for (size_t i = 0; i < len; i++) fprintf(stderr, " %02X", buf[i]);
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    CU_ASSERT(valid > 1000);   /* the alphabet gives valid strings too */
    /* the 8-byte ASCII path: a bad byte at every position of a 40-byte text */
    for (size_t at = 0; at < 40; at++) {
        char t[40];
        memset(t, 'z', sizeof t);
        t[at] = (char)0x80;
        size_t bad = 99;
        CU_ASSERT_FALSE(vigil_utf8_check(t, sizeof t, &bad, NULL));
        CU_ASSERT_EQUAL(bad, at);
    }
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("batch", setup, teardown);
    CU_add_test(s, "one event", test_single_event);
    CU_add_test(s, "a pretty-printed event is one event, not NDJSON", test_pretty_printed);
    CU_add_test(s, "NDJSON with blank lines and CRLF", test_ndjson_blank_crlf);
    CU_add_test(s, "an empty body", test_empty_body);
    CU_add_test(s, "all or nothing: the first bad line stops, named", test_stop_at_first_bad);
    CU_add_test(s, "skip bad lines: the callback's line and offset", test_skip_bad);
    CU_add_test(s, "too many lines: ETOOBIG before decoding", test_too_many_lines);
    CU_add_test(s, "out of memory for the events array", test_out_of_memory);
    CU_add_test(s, "invalid UTF-8: a bad line at the exact byte offset", test_invalid_utf8);
    CU_add_test(s, "valid multi-byte UTF-8 accepted", test_valid_utf8);
    CU_add_test(s, "UTF-8 check equals a slow reference on 300,000 random strings", test_utf8_reference);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)(CU_get_number_of_failures() + CU_get_number_of_suites_failed());
    CU_cleanup_registry();
    return fails != 0;
}
