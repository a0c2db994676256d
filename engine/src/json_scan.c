/* json_scan.c — a single-pass scanner for the events that plain JSON
 * writes, in front of cJSON (json_scan.h gives the shape it takes).
 *
 * Why it exists (issue 16, rows c and d): after cJSON's allocations went to
 * an arena, the field lookups to one walk and numbers' raw text to the
 * text check's pass, decoding an event was still ~15,400 instructions of
 * the core NATS path's ~27,000, and cJSON's parse was ~8,500 of them: a
 * node and a string copy per value, strtod and localeconv per number,
 * strncmp against "null"/"false"/"true" per value. This scanner reads such
 * an event once, writes down where each member's name and value are (no
 * copy, no allocation), and the decoder takes only the fields the rules
 * need from it. It is not a second JSON parser: whatever it does not fully
 * understand (an escape, a control character, a byte-order mark, unusual
 * blanks, deep nesting, many members, long numbers, anything malformed) it
 * declines, and the event takes cJSON's path, which stays the validating
 * parser and the one source of every error message. What it accepts, cJSON
 * accepts with the same values — checked by a differential test against
 * cJSON (tests/unit/test_decode_json.c over generated events and the fuzz
 * corpus, tests/fuzz/fuzz_json.c under libFuzzer). */
#include "json_scan.h"

#include <string.h>

typedef struct sc {
    const unsigned char *b;
    size_t len, i;
    vjs_doc *d;
    int nobj;
} sc;

static int value(sc *s, int depth, int rec, vjs_member *m);

static inline void blanks(sc *s) {
    while (s->i < s->len) {
        unsigned char c = s->b[s->i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        s->i++;
    }
}

/* Bytes that end the plain part of a string: '"', '\\' and the control
 * characters. */
#define C1 1, 1, 1, 1, 1, 1, 1, 1
static const unsigned char str_stop[256] = {C1, C1, C1, C1, ['"'] = 1, ['\\'] = 1};
#undef C1

/* At '"': a string without escapes or control characters. */
static int string(sc *s, uint32_t *off, uint32_t *n) {
    size_t i = s->i + 1, st = i;
    const unsigned char *b = s->b;
    while (i + 4 <= s->len && !(str_stop[b[i]] | str_stop[b[i + 1]] | str_stop[b[i + 2]] | str_stop[b[i + 3]])) i += 4;
    while (i < s->len && !str_stop[b[i]]) i++;
    if (i >= s->len || b[i] != '"') return 0;
    *off = (uint32_t)st;
    *n = (uint32_t)(i - st);
    s->i = i + 1;
    return 1;
}

static inline int digit(unsigned char c) { return (unsigned char)(c - '0') < 10; }

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? of at most 63 bytes
 * (longer ones go to cJSON: versions differ in how they read them). */
static int number(sc *s, uint32_t *off, uint32_t *n) {
    const unsigned char *b = s->b;
    size_t i = s->i, st = i, len = s->len;
    if (i < len && b[i] == '-') i++;
    if (i >= len) return 0;
    if (b[i] == '0') i++;
    else if (digit(b[i]))
        while (i < len && digit(b[i])) i++;
    else return 0;
    if (i < len && b[i] == '.') {
        if (++i >= len || !digit(b[i])) return 0;
        while (i < len && digit(b[i])) i++;
    }
    if (i < len && (b[i] == 'e' || b[i] == 'E')) {
        i++;
        if (i < len && (b[i] == '+' || b[i] == '-')) i++;
        if (i >= len || !digit(b[i])) return 0;
        while (i < len && digit(b[i])) i++;
    }
    if (i - st > 63) return 0;
    *off = (uint32_t)st;
    *n = (uint32_t)(i - st);
    s->i = i;
    return 1;
}

static int literal(sc *s, const char *w, size_t n) {
    if (s->len - s->i < n || memcmp(s->b + s->i, w, n) != 0) return 0;
    s->i += n;
    return 1;
}

/* At '{': the object numbered id; its members are written down when rec
 * (an object a path can reach: not inside an array). */
/* After a member's or an element's value: 1 at a ',' (passed, and the
 * blanks after it), 0 at `close` (passed: the container ends), -1 for
 * anything else. */
static int after_value(sc *s, char close) {
    blanks(s);
    if (s->i >= s->len) return -1;
    if (s->b[s->i] == ',') {
        s->i++;
        blanks(s);
        return 1;
    }
    if (s->b[s->i] != close) return -1;
    s->i++;
    return 0;
}

static int object(sc *s, int depth, int rec, int32_t id) {
    if (depth > VJS_MAX_DEPTH) return 0;
    s->i++;
    blanks(s);
    if (s->i < s->len && s->b[s->i] == '}') {
        s->i++;
        return 1;
    }
    for (;;) {
        vjs_member tmp, *m = &tmp;
        if (s->i >= s->len || s->b[s->i] != '"') return 0;
        if (rec) {
            if (s->d->n == VJS_MAX_MEMBERS) return 0;
            m = &s->d->m[s->d->n++];   /* before its value's members: document order */
        }
        if (!string(s, &m->name, &m->name_len)) return 0;
        blanks(s);
        if (s->i >= s->len || s->b[s->i] != ':') return 0;
        s->i++;
        blanks(s);
        m->obj = id;
        if (!value(s, depth, rec, m)) return 0;
        int more = after_value(s, '}');
        if (more <= 0) return more == 0;
    }
}

static int array(sc *s, int depth) {
    if (depth > VJS_MAX_DEPTH) return 0;
    s->i++;
    blanks(s);
    if (s->i < s->len && s->b[s->i] == ']') {
        s->i++;
        return 1;
    }
    for (;;) {
        vjs_member tmp;
        if (!value(s, depth, 0, &tmp)) return 0;
        int more = after_value(s, ']');
        if (more <= 0) return more == 0;
    }
}

/* The value at s->i into m (type, bytes, child). */
static int value(sc *s, int depth, int rec, vjs_member *m) {
    if (s->i >= s->len) return 0;
    size_t st = s->i;
    m->child = -1;
    switch (s->b[st]) {
    case '"':
        m->type = VJS_STR;
        return string(s, &m->val, &m->val_len);
    case '{': {
        int32_t id = ++s->nobj;
        m->type = VJS_OBJ;
        m->child = id;
        if (!object(s, depth + 1, rec, id)) return 0;
        break;
    }
    case '[':
        m->type = VJS_ARR;
        if (!array(s, depth + 1)) return 0;
        break;
    case 't':
        m->type = VJS_TRUE;
        if (!literal(s, "true", 4)) return 0;
        break;
    case 'f':
        m->type = VJS_FALSE;
        if (!literal(s, "false", 5)) return 0;
        break;
    case 'n':
        m->type = VJS_NULL;
        if (!literal(s, "null", 4)) return 0;
        break;
    default:
        m->type = VJS_NUM;
        return number(s, &m->val, &m->val_len);
    }
    m->val = (uint32_t)st;
    m->val_len = (uint32_t)(s->i - st);
    return 1;
}

int vjs_scan(const char *buf, size_t len, vjs_doc *d) {
    if (len >= UINT32_MAX) return 0;
    sc s = {.b = (const unsigned char *)buf, .len = len, .d = d};
    d->buf = buf;
    d->len = len;
    d->n = 0;
    blanks(&s);
    if (s.i >= len || s.b[s.i] != '{' || !object(&s, 1, 1, 0)) return 0;
    blanks(&s);
    return s.i == len;
}
