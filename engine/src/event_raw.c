/* event_raw.c — the raw JSON text of a number, for keys and ids.
 *
 * Part of decoding (event_json.c): DESIGN.md §3 takes keys and ids from the raw
 * text, never through a double, so 1, 1.0 and 1e0 are three keys and ids
 * above 2^53 keep their digits. cJSON keeps only the double and no position,
 * so the number's token is found again in the bytes cJSON parsed: quickly
 * when the member's name occurs once, else by a scan that tracks the nesting.
 * Split from event.c (at its size limit); only event_json.c calls it. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* Raw JSON text lookup (cJSON keeps only a double, DESIGN.md §3 wants a
 * key's or id's own text). buf[i] is inside an object, just after its '{'
 * or at one of its members: the offset of the value of member `name` at
 * this level, or -1. Members are compared as raw bytes (a name written
 * with escapes is not found: the caller falls back to the double). */
static long raw_member(const char *buf, size_t len, size_t i, const char *name, size_t nlen) {
    int depth = 0;
    for (; i < len; i++) {
        char c = buf[i];
        if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') {
            if (--depth < 0) return -1;   /* the end of this object */
        } else if (c == '"') {
            size_t st = ++i;
            while (i < len && buf[i] != '"') i += buf[i] == '\\' ? 2 : 1;
            if (i >= len) return -1;
            if (depth != 0 || i - st != nlen || memcmp(buf + st, name, nlen) != 0) continue;
            size_t j = i + 1;
            while (j < len && isspace((unsigned char)buf[j])) j++;
            if (j >= len || buf[j] != ':') continue;   /* a string value, not a member name */
            j++;
            while (j < len && isspace((unsigned char)buf[j])) j++;
            return j < len ? (long)j : -1;
        }
    }
    return -1;
}

/* The number token at p (after the member name's closing quote: blanks,
 * ':', blanks, the token). */
static int number_after(const char *p, const char *end, const char **out, size_t *olen) {
    while (p < end && isspace((unsigned char)*p)) p++;
    if (p >= end || *p++ != ':') return -1;
    while (p < end && isspace((unsigned char)*p)) p++;
    const char *k = p;
    while (k < end && (isdigit((unsigned char)*k) || strchr("+-.eE", *k))) k++;
    if (k == p) return -1;
    *out = p;
    *olen = (size_t)(k - p);
    return 0;
}

/* The fast path of raw_number for a top-level member (every JSON key of
 * the hot path): when the bytes "name" occur once in buf, that is the
 * member json_path found — checked by its value, v (an escaped name, which
 * these bytes would not match, goes the slow way). memchr jumps from quote
 * to quote instead of walking every byte with a depth count. */
static int raw_unique(const char *buf, size_t len, const char *name, size_t nlen, double v, const char **out,
                      size_t *olen) {
    const char *end = buf + len, *hit = NULL;
    for (const char *p = buf; p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL; p++) {
        if ((size_t)(end - p) > nlen + 1 && p[nlen + 1] == '"' && memcmp(p + 1, name, nlen) == 0) {
            if (hit) return -1;
            hit = p;
            p += nlen + 1;
        }
    }
    char t[64];
    if (!hit || number_after(hit + nlen + 2, end, out, olen) != 0 || *olen >= sizeof t) return -1;
    memcpy(t, *out, *olen);
    t[*olen] = '\0';
    return strtod(t, NULL) == v ? 0 : -1;
}

/* The raw text of the number at `path` (a top-level member of that name,
 * which wins as in json_path, or the nested members along the dots); v is
 * its value as cJSON read it. */
int vev_raw_number(const char *buf, size_t len, const char *path, double v, const char **out, size_t *olen) {
    size_t pl = strlen(path);
    if (raw_unique(buf, len, path, pl, v, out, olen) == 0) return 0;
    size_t i = 0;
    while (i < len && buf[i] != '{') i++;
    if (i++ >= len) return -1;   /* i: just inside the object */
    long at = raw_member(buf, len, i, path, pl);
    for (const char *p = path; at < 0 && strchr(path, '.');) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        at = raw_member(buf, len, i, p, n);
        if (at < 0 || !dot) break;
        if (buf[at] != '{') return -1;
        i = (size_t)at + 1;
        p = dot + 1;
        at = -1;
    }
    if (at < 0) return -1;
    size_t j = (size_t)at, k = j;
    while (k < len && (isdigit((unsigned char)buf[k]) || strchr("+-.eE", buf[k]))) k++;
    if (k == j) return -1;
    *out = buf + j;
    *olen = k - j;
    return 0;
}
