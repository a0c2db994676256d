/* batch.c — the one NDJSON batch decoder (see batch.h): split a body into
 * events, check each as UTF-8, decode it, and apply the source's policy to
 * bad lines.
 *
 * It replaces the three split-and-decode loops that HTTP, core NATS and
 * JetStream each had (issue 10), and adds the UTF-8 check those loops
 * lacked: the JSON decoder passes bytes through, so an event with invalid
 * UTF-8 used to be accepted and to reach alerts, webhooks and the dashboard.
 * A first pass counts the non-blank lines, so that a batch over the limit is
 * refused before anything is decoded and the events array is allocated
 * once, at its exact size. Depends only on engine/ (event.h): the fuzz
 * target compiles it alone. */
#include "batch.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void *(*vigil_batch_realloc)(void *p, size_t n) = realloc;

/* ---- UTF-8 (RFC 3629 §4: the well-formed byte sequences) ------------------------- */

/* The well-formed sequence at u[i] (u[i] >= 0x80): its length, or 0 with
 * *why naming what is wrong. */
static inline size_t utf8_seq(const unsigned char *u, size_t i, size_t len, const char **why) {
    unsigned c = u[i];
    size_t need;                     /* continuation bytes after the lead */
    unsigned lo = 0x80, hi = 0xBF;   /* the range of the first continuation byte */
    if (c < 0xC2) {
        *why = c < 0xC0 ? "unexpected continuation byte" : "overlong encoding";
        return 0;
    } else if (c < 0xE0) {
        need = 1;
    } else if (c < 0xF0) {
        need = 2;
        if (c == 0xE0) lo = 0xA0;         /* E0 80..9F: overlong */
        else if (c == 0xED) hi = 0x9F;    /* ED A0..BF: U+D800..U+DFFF */
    } else if (c < 0xF5) {
        need = 3;
        if (c == 0xF0) lo = 0x90;         /* F0 80..8F: overlong */
        else if (c == 0xF4) hi = 0x8F;    /* F4 90..: above U+10FFFF */
    } else {
        *why = "byte never used in UTF-8 (0xF5..0xFF)";
        return 0;
    }
    if (len - i - 1 < need) {
        *why = "truncated sequence";
        return 0;
    }
    unsigned c1 = u[i + 1];
    if (c1 < 0x80 || c1 > 0xBF) {
        *why = "truncated sequence";
        return 0;
    }
    if (c1 < lo) {
        *why = "overlong encoding";
        return 0;
    }
    if (c1 > hi) {
        *why = c == 0xED ? "UTF-16 surrogate" : "code point above U+10FFFF";
        return 0;
    }
    for (size_t k = 2; k <= need; k++)
        if ((u[i + k] & 0xC0) != 0x80) {
            *why = "truncated sequence";
            return 0;
        }
    return need + 1;
}

int vigil_utf8_check(const char *s, size_t len, size_t *bad, const char **why) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    const char *w = NULL;
    while (i < len) {
        /* ASCII runs, eight bytes at a time */
        while (i + 8 <= len) {
            uint64_t x;
            memcpy(&x, u + i, 8);
            if (x & UINT64_C(0x8080808080808080)) break;
            i += 8;
        }
        if (i >= len) break;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(u, i, len, &w);
        if (!n) break;
        i += n;
    }
    if (!w) return 1;
    if (bad) *bad = i;
    if (why) *why = w;
    return 0;
}

/* ---- splitting ----------------------------------------------------------------- */

static int blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* One line of the body: [a, b) is the line without its blanks at either end. */
typedef struct span {
    const char *start;   /* first byte of the line */
    const char *a, *b;
} span;

/* The next '\n'-separated line from *p (before end); advances *p past its '\n'. */
static span next_line(const char **p, const char *end) {
    span s;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    const char *le = nl ? nl : end;
    s.start = s.a = *p;
    s.b = le;
    while (s.a < s.b && blank(*s.a)) s.a++;
    while (s.b > s.a && blank(s.b[-1])) s.b--;
    *p = nl ? nl + 1 : end;
    return s;
}

static void set_error(vigil_batch_error *e, size_t line, size_t offset, vigil_status st, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_error(vigil_batch_error *e, size_t line, size_t offset, vigil_status st, const char *fmt, ...) {
    e->limit = NULL;
    e->line = line;
    e->offset = offset;
    e->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

/* 1-based line of body offset off: 1 + the '\n's before it. */
static size_t line_of(const char *body, size_t off) {
    size_t line = 1;
    const char *p = body, *end = body + off;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        line++;
        p++;
    }
    return line;
}

/* What a byte is to scan_line: 0 nothing (skipped), 1 what
 * the shape turns on ('"', '\\', ':', the brackets), 2 not ASCII. */
#define X2 2, 2, 2, 2, 2, 2, 2, 2
static const unsigned char scan_class[256] = {
    ['"'] = 1, ['\\'] = 1, [':'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
    [0x80] = X2, X2, X2, X2, X2, X2, X2, X2, X2, X2, X2, X2, X2, X2, X2, X2,
};
#undef X2

/* The first i' >= i with scan_class[u[i']] set, or n. With SSE2 (every
 * x86-64), sixteen bytes at a time: a mask of the block that starts at the
 * first byte not yet looked at, kept while the scan stays inside it. */
typedef struct finder {
    const unsigned char *u;
    size_t n, base;      /* the block [base, base + 16) */
    uint32_t m;          /* its bytes of class 1 or 2 */
} finder;

static inline size_t next_special(finder *fd, size_t i) {
#ifdef __SSE2__
    for (;;) {
        if (i - fd->base < 16) {   /* inside the block (base <= i) */
            uint32_t m = fd->m >> (i - fd->base);
            if (m) return i + (size_t)__builtin_ctz(m);
            i = fd->base + 16;
        }
        if (i + 16 > fd->n) break;
        __m128i v = _mm_loadu_si128((const __m128i *)(fd->u + i)), low = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                  _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(':')),
                                               _mm_or_si128(_mm_cmpeq_epi8(low, _mm_set1_epi8('{')),   /* { [ */
                                                            _mm_cmpeq_epi8(low, _mm_set1_epi8('}')))));   /* } ] */
        fd->base = i;
        fd->m = (uint32_t)_mm_movemask_epi8(_mm_or_si128(sp, v));   /* | the high bit: not ASCII */
    }
#endif
    while (i < fd->n && !scan_class[fd->u[i]]) i++;
    return i;
}

/* One pass over an event's bytes [a, a + n) before it is parsed (so an event
 * over a limit costs no parse): vigil_utf8_check, and the shape of its
 * JSON text — the deepest nesting of objects and arrays (*depth) and the
 * object members at every level (*fields: one ':' outside a string is one
 * member). The shape stops counting once both are over their limits (the
 * numbers the messages give); the UTF-8 check goes on to the end. Returns
 * 1, or 0 with *bad and *why as vigil_utf8_check gives them. (Two passes
 * until issue 16; one is ~40 % fewer instructions per event.) */
static int scan_line(const char *a, size_t n, int max_depth, int max_fields, size_t *bad, const char **why,
                     int *depth, int *fields) {
    const unsigned char *u = (const unsigned char *)a;
    finder fd = {.u = u, .n = n, .base = SIZE_MAX - 16};
    int d = 0, md = 0, f = 0, in_str = 0;
    size_t i = 0;
    for (;;) {
        if ((i = next_special(&fd, i)) >= n) break;
        unsigned c = u[i];
        if (c >= 0x80) {   /* never part of the shape: check the sequence, step over it */
            size_t k = utf8_seq(u, i, n, why);
            if (!k) {
                *bad = i;
                return 0;
            }
            i += k;
            continue;
        }
        i++;
        if (in_str) {
            if (c == '\\') {
                if (i < n && u[i] < 0x80) i++;   /* the escaped byte; one that is not ASCII starts a sequence */
            } else if (c == '"') {
                in_str = 0;
            }
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') {
            if (++d > md) md = d;
        } else if (c == '}' || c == ']') d--;
        else if (c == ':') f++;
        if (md > max_depth && f > max_fields) {   /* both over: the rest is only checked as UTF-8 */
            size_t rb;
            if (!vigil_utf8_check(a + i, n - i, &rb, why)) {
                *bad = i + rb;
                return 0;
            }
            break;
        }
    }
    *depth = md;
    *fields = f;
    return 1;
}

/* The common case of scan_line in one cheap pass: a line of ASCII only
 * (valid UTF-8) with no more '{' and '[' than max_depth (the nesting cannot
 * be deeper) and no more ':' than max_fields (the members, counted outside
 * strings, cannot be more): then scan_line would find nothing, and 1 says
 * so. 0: scan_line must look. Counted sixteen bytes at a time with SSE2;
 * without it, always 0. */
static int quick_ok(const char *a, size_t n, int max_depth, int max_fields) {
#ifdef __SSE2__
    const unsigned char *u = (const unsigned char *)a;
    size_t i = 0, opens = 0, colons = 0;
    unsigned high = 0;
    while (i + 16 <= n) {
        /* per-byte counters (a match is -1: subtracted), summed every 255 blocks at most */
        __m128i co = _mm_setzero_si128(), cc = _mm_setzero_si128(), hi = _mm_setzero_si128();
        for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(u + i)), low = _mm_or_si128(v, _mm_set1_epi8(0x20));
            hi = _mm_or_si128(hi, v);
            co = _mm_sub_epi8(co, _mm_cmpeq_epi8(low, _mm_set1_epi8('{')));   /* { and [ */
            cc = _mm_sub_epi8(cc, _mm_cmpeq_epi8(v, _mm_set1_epi8(':')));
        }
        high |= (unsigned)_mm_movemask_epi8(hi);
        __m128i so = _mm_sad_epu8(co, _mm_setzero_si128()), sc = _mm_sad_epu8(cc, _mm_setzero_si128());
        opens += (size_t)_mm_cvtsi128_si32(so) + (size_t)_mm_extract_epi16(so, 4);
        colons += (size_t)_mm_cvtsi128_si32(sc) + (size_t)_mm_extract_epi16(sc, 4);
    }
    for (; i < n; i++) {
        high |= u[i] & 0x80;
        opens += u[i] == '{' || u[i] == '[';
        colons += u[i] == ':';
    }
    return !high && opens <= (size_t)max_depth && colons <= (size_t)max_fields;
#else
    (void)a, (void)n, (void)max_depth, (void)max_fields;
    return 0;
#endif
}

/* The shape limits of o (0: not checked). VIGIL_OK, or EPARSE with *e
 * naming the limit (e->limit). */
static vigil_status check_shape(const vigil_batch_opts *o, size_t off, size_t line, int depth, int fields,
                                vigil_batch_error *e) {
    if (o->max_depth && depth > o->max_depth) {
        set_error(e, line, off, VIGIL_EPARSE, "the event nests objects and arrays %d deep; at most %d are "
                  "allowed (limits.max_depth)", depth, o->max_depth);
        e->limit = "max_depth";
        return VIGIL_EPARSE;
    }
    if (o->max_fields && fields > o->max_fields) {
        set_error(e, line, off, VIGIL_EPARSE, "the event has %d fields; at most %d are allowed "
                  "(limits.max_fields)", fields, o->max_fields);
        e->limit = "max_fields";
        return VIGIL_EPARSE;
    }
    return VIGIL_OK;
}

/* The key limit of o (0: not checked) on a decoded event. VIGIL_OK, or
 * EPARSE with *e naming the limit (e->limit). */
static vigil_status check_keys(const vigil_ruleset *rs, const vigil_batch_opts *o, size_t off, size_t line,
                               const vigil_event *ev, vigil_batch_error *e) {
    if (!o->max_key_bytes) return VIGIL_OK;
    int ng = vigil_ruleset_group_count(rs);
    for (int g = 0; g < ng; g++) {
        size_t kl = 0;
        if (vigil_event_key(ev, g, &kl) && kl > (size_t)o->max_key_bytes) {
            set_error(e, line, off, VIGIL_EPARSE, "the key '%s' is %zu bytes long; at most %d are allowed "
                      "(limits.max_key_bytes)", vigil_ruleset_group_key(rs, g), kl, o->max_key_bytes);
            e->limit = "max_key_bytes";
            return VIGIL_EPARSE;
        }
    }
    return VIGIL_OK;
}

/* Check and decode one event, [s.a, s.b) of body. VIGIL_OK with *ev, or the
 * line's status with *e filled (ENOMEM is the caller's failure, not the line's). */
static vigil_status decode_one(const vigil_ruleset *rs, const vigil_batch_opts *o, const char *body,
                               span s, size_t line, int one_event, vigil_event **ev, vigil_batch_error *e) {
    const vigil_decode_opts *dopts = o->decode;
    size_t bad, n = (size_t)(s.b - s.a), off = (size_t)(s.start - body);
    const char *why;
    int depth = 0, fields = 0, shaped = o->max_depth || o->max_fields;
    *ev = NULL;
    int maxd = o->max_depth ? o->max_depth : INT_MAX, maxf = o->max_fields ? o->max_fields : INT_MAX;
    if (shaped && quick_ok(s.a, n, maxd, maxf)) {
        shaped = 0;   /* ASCII, and within both limits whatever the strings hold */
    } else if (shaped ? !scan_line(s.a, n, maxd, maxf, &bad, &why, &depth, &fields)
                      : !vigil_utf8_check(s.a, n, &bad, &why)) {
        size_t at = (size_t)(s.a - body) + bad;
        set_error(e, one_event ? line_of(body, at) : line, at, VIGIL_EPARSE,
                  "invalid UTF-8 at byte offset %zu: %s", at, why);
        return VIGIL_EPARSE;
    }
    if (shaped && check_shape(o, off, line, depth, fields, e) != VIGIL_OK) return VIGIL_EPARSE;
    vigil_error derr;
    vigil_error_clear(&derr);
    char fid[160];   /* "<prefix>:<line>" */
    if (o->fallback_id_prefix) snprintf(fid, sizeof fid, "%.128s:%zu", o->fallback_id_prefix, line);
    vigil_status st = vigil_event_decode_json(rs, dopts, s.a, n, o->fallback_id_prefix ? fid : NULL, 1, ev, &derr);
    if (st == VIGIL_OK && check_keys(rs, o, off, line, *ev, e) != VIGIL_OK) {
        vigil_event_release(*ev);
        *ev = NULL;
        return VIGIL_EPARSE;
    }
    if (st != VIGIL_OK) {
        *ev = NULL;
        set_error(e, line, off, st, "%s", derr.msg[0] ? derr.msg : vigil_status_str(st));
    }
    return st;
}

/* ---- the batch -------------------------------------------------------------------- */

void vigil_batch_release(vigil_batch *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) vigil_event_release(b->events[i]);
    free(b->events);
    b->events = NULL;
    b->n = b->cap = 0;
}

/* Make room for want entries (want >= 1). */
static vigil_status reserve(vigil_batch *b, size_t want) {
    if (want <= b->cap) return VIGIL_OK;
    if (want > SIZE_MAX / sizeof *b->events) return VIGIL_ENOMEM;
    vigil_event **ne = vigil_batch_realloc(b->events, want * sizeof *ne);
    if (!ne) return VIGIL_ENOMEM;
    b->events = ne;
    b->cap = want;
    return VIGIL_OK;
}

static vigil_status fail(vigil_batch *out, vigil_batch_error *err, vigil_batch_error *e) {
    vigil_batch_release(out);
    out->lines = out->bad = out->bad_nokey = out->bad_limit = 0;
    if (err) *err = *e;
    return e->status;
}

vigil_status vigil_batch_decode(const vigil_ruleset *rs, const vigil_batch_opts *o, const char *body,
                                size_t len, vigil_batch *out, vigil_batch_error *err) {
    static const vigil_batch_opts zero;
    vigil_batch_error e;
    /* not memset: the messages are 512 bytes and this runs once per NATS message */
    e.line = e.offset = 0;
    e.limit = NULL;
    e.status = VIGIL_OK;
    e.msg[0] = '\0';
    if (err) {
        err->line = err->offset = 0;
        err->limit = NULL;
        err->status = VIGIL_OK;
        err->msg[0] = '\0';
    }
    if (out) memset(out, 0, sizeof *out);
    if (!o) o = &zero;
    if (!rs || !out || (!body && len)) {
        set_error(&e, 0, 0, VIGIL_EINVAL, "vigil_batch_decode: no ruleset, no result or no body");
        if (err) *err = e;
        return VIGIL_EINVAL;
    }
    if (!body) body = "";
    const char *end = body + len;
    size_t max = o->max_events ? o->max_events : VIGIL_BATCH_MAX_EVENTS_DEFAULT;
    int one_event = o->mode == VIGIL_BATCH_ONE_EVENT;

    /* first pass: count the non-blank lines; refuse too many before decoding any */
    size_t count = 0, line = 0;
    for (const char *p = body; p < end;) {
        span s = next_line(&p, end);
        line++;
        if (s.a == s.b) continue;
        if (one_event) {
            count = 1;
            break;
        }
        if (++count > max) {
            set_error(&e, line, (size_t)(s.start - body), VIGIL_ETOOBIG,
                      "more than %zu events in one batch", max);
            return fail(out, err, &e);
        }
    }
    if (count == 0) {
        if (o->empty_ok) return VIGIL_OK;
        set_error(&e, 0, 0, VIGIL_EPARSE, "empty body: expected a JSON event or NDJSON lines");
        return fail(out, err, &e);
    }
    if (reserve(out, count) != VIGIL_OK) {
        set_error(&e, 0, 0, VIGIL_ENOMEM, "out of memory for a batch of %zu events", count);
        return fail(out, err, &e);
    }

    /* second pass: check and decode */
    line = 0;
    for (const char *p = body; p < end;) {
        span s;
        if (one_event) {   /* the whole body, blanks (newlines too) trimmed */
            s.start = s.a = body;
            s.b = end;
            while (s.a < s.b && blank(*s.a)) s.a++;
            while (s.b > s.a && blank(s.b[-1])) s.b--;
            p = end;
        } else {
            s = next_line(&p, end);
        }
        line++;
        if (s.a == s.b) continue;
        out->lines++;
        vigil_event *ev;
        vigil_status st = decode_one(rs, o, body, s, line, one_event, &ev, &e);
        if (st == VIGIL_ENOMEM) return fail(out, err, &e);
        if (st != VIGIL_OK) {
            if (o->policy != VIGIL_BATCH_SKIP_BAD) return fail(out, err, &e);
            out->bad++;
            if (st == VIGIL_ENOKEY) out->bad_nokey++;
            if (e.limit) out->bad_limit++;
            if (o->on_bad) o->on_bad(o->ud, &e);
            continue;
        }
        out->events[out->n++] = ev;   /* room: count >= the non-blank lines */
    }
    return VIGIL_OK;
}
