/* fuzz_batch.c — libFuzzer target for the NDJSON batch decoder
 * (vigil_batch_decode and vigil_utf8_check, server/ingest/batch.c).
 *
 * Every byte that reaches the server through POST /v1/events, core NATS or
 * JetStream goes through this decoder first, so it must survive anything and
 * keep its promises. The first input byte picks the options (mode LINES or
 * ONE_EVENT, policy STOP_AT_FIRST_BAD or SKIP_BAD, empty_ok, a small or the
 * default event limit, decode options with several time/id fields); the rest
 * is the body, copied to a buffer of exactly its size so that ASan sees any
 * read past it. Checked on each input: the UTF-8 check equals a slow
 * reference (decode each code point, test the RFC 3629 ranges); on success
 * the counts add up (lines = n + bad, bad_nokey <= bad, n <= the limit) and
 * every event's JSON text is valid UTF-8; each bad line reported to the
 * callback lies inside the body, in increasing line order, and an "invalid
 * UTF-8" report points at a byte where the reference finds the first bad
 * sequence of its line; on failure the batch is empty and the error names
 * the returned status. Events are released and the batch freed:
 * LeakSanitizer checks ownership. FUZZ_VERBOSE=1 prints each input's
 * outcome and bad lines, to check that a seed does what it is meant to. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/event.h"
#include "vigil/rules.h"
#include "batch.h"
#include "fuzz_common.h"

static vigil_ruleset *rs;

static const char rules_src[] =
    "rule{ name='probe_then_cashout', key='customer_id', within='1h',\n"
    "  pattern = begin('probe'):where{ type='tx', tx_amount=lt(10), ['card.bin']=one_of{'4111','5500'} }\n"
    "            :times_or_more(2)\n"
    "            :followed_by('cash'):where{ type='tx', email=matches('@mailinator\\\\.com$','i') } }\n"
    "rule{ name='velocity', key='card.id', window=sliding('10m'),\n"
    "  when = ge(count{ type='tx' }, 5) }\n";

static vigil_decode_opts dopts = {.time_fields = {"tx_datetime", "ts"}, .ntime_fields = 2,
                                  .id_fields = {"transaction_id", "id"}, .nid_fields = 2,
                                  .time_format = VIGIL_TIME_AUTO, .type_default = "tx"};

static int verbose;   /* FUZZ_VERBOSE=1: print each input's outcome (to check a seed) */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    rs = fuzz_ruleset("fuzz_batch", rules_src);
    return 0;
}

/* The slow reference: offset of the first byte of the first ill-formed
 * sequence, or len when s[0..len) is valid UTF-8. */
static size_t ref_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return i;
        }
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

typedef struct check {
    const char *body;
    size_t len;
    size_t last_line;
    size_t calls;
} check;

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* A bad line's report: inside the body; an invalid UTF-8 offset is where the
 * reference finds the first bad sequence of the line. */
static void check_line_report(const check *c, const vigil_batch_error *e) {
    if (e->line == 0 || e->offset >= c->len || e->status == VIGIL_OK || e->status == VIGIL_ENOMEM ||
        e->status == VIGIL_ETOOBIG || !memchr(e->msg, '\0', sizeof e->msg))
        abort();
    if (strncmp(e->msg, "invalid UTF-8 at byte offset ", 29) == 0) {
        /* the line's trimmed start .. the end of its line */
        const char *b = c->body, *at = b + e->offset, *end = b + c->len;
        const char *ls = at;
        while (ls > b && ls[-1] != '\n') ls--;
        while (ls < at && blank(*ls)) ls++;
        const char *le = memchr(at, '\n', (size_t)(end - at));
        if (!le) le = end;
        while (le > at && blank(le[-1])) le--;
        if (ref_utf8((const unsigned char *)ls, (size_t)(le - ls)) != (size_t)(at - ls)) abort();
    }
}

static void on_bad(void *ud, const vigil_batch_error *e) {
    check *c = ud;
    c->calls++;
    if (verbose) fprintf(stderr, "fuzz_batch:   bad line %zu at byte %zu: %s\n", e->line, e->offset, e->msg);
    check_line_report(c, e);
    if (e->line <= c->last_line) abort();
    c->last_line = e->line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned sel = data[0];
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) return 0;
    memcpy(body, data + 1, len);

    /* the UTF-8 check against the reference, on the whole body */
    size_t bad = (size_t)-1;
    const char *why = NULL;
    int ok = vigil_utf8_check(body, len, &bad, &why);
    size_t want = ref_utf8((const unsigned char *)body, len);
    if (ok ? want != len : (want != bad || !why)) abort();

    check c = {.body = body, .len = len};
    vigil_batch_opts o = {
        .mode = (sel & 1) ? VIGIL_BATCH_ONE_EVENT : VIGIL_BATCH_LINES,
        .policy = (sel & 2) ? VIGIL_BATCH_SKIP_BAD : VIGIL_BATCH_STOP_AT_FIRST_BAD,
        .empty_ok = (sel >> 2) & 1,
        .max_events = (sel & 8) ? 1 + ((sel >> 5) & 7) : 0,
        .decode = (sel & 16) ? &dopts : NULL,
        .on_bad = on_bad,
        .ud = &c,
    };
    vigil_batch b;
    vigil_batch_error e;
    vigil_status st = vigil_batch_decode(rs, &o, body, len, &b, &e);
    size_t max = o.max_events ? o.max_events : VIGIL_BATCH_MAX_EVENTS_DEFAULT;
    if (verbose)
        fprintf(stderr, "fuzz_batch: mode %d policy %d empty_ok %d max %zu: %s, %zu events, %zu bad; %s%s\n", o.mode,
                o.policy, o.empty_ok, max, vigil_status_str(st), b.n, b.bad, e.msg[0] ? "error: " : "", e.msg);
    if (st == VIGIL_OK) {
        if (e.status != VIGIL_OK || b.lines != b.n + b.bad || b.bad_nokey > b.bad || b.n > max ||
            b.n > b.cap || c.calls != b.bad)
            abort();
        if (o.policy == VIGIL_BATCH_STOP_AT_FIRST_BAD && b.bad) abort();
        if (o.mode == VIGIL_BATCH_ONE_EVENT && b.lines > 1) abort();
        for (size_t i = 0; i < b.n; i++) {
            size_t jl;
            const char *js = vigil_event_json(b.events[i], &jl);
            if (!b.events[i] || !vigil_utf8_check(js, jl, NULL, NULL)) abort();
        }
        vigil_batch_release(&b);
    } else {
        if (b.n || b.events || e.status != st || (e.line && e.offset >= len)) abort();
        if (o.policy == VIGIL_BATCH_STOP_AT_FIRST_BAD && c.calls) abort();
        if (e.line && st != VIGIL_ETOOBIG) check_line_report(&c, &e);
        if (st == VIGIL_ETOOBIG && (o.mode == VIGIL_BATCH_ONE_EVENT || e.line == 0)) abort();
        if (st == VIGIL_EPARSE && e.line == 0 && (o.empty_ok || strncmp(e.msg, "empty body", 10) != 0)) abort();
    }
    free(body);
    return 0;
}
