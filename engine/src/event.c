/* event.c — decoding CSV rows into events with typed slots; the event
 * itself (allocation, refcount, accessors) and the time parsers.
 *
 * First stage of the flow. JSON objects are decoded by event_json.c (the
 * server's path); this file keeps what both decoders share. CSV rows are
 * split in place (RFC 4180 quoting) and rendered to JSON only when an alert
 * needs them as evidence.
 *
 * CSV decoding is the replay's hot path (about a million rows a second), so
 * it has fast paths that give exactly what the general code gives: a CSV
 * event is one allocation (the event, its slots and keys, the row and the
 * split copy of the row); numbers short enough for Clinger's fast path are
 * converted without strtod (bit-identical results, strtod for the rest);
 * RFC 3339 times of the fixed shape "YYYY-MM-DDTHH:MM:SSZ" skip the general
 * parser; key columns are looked up once per header. The CSV fast paths are
 * checked against the general JSON path (test_decode.c). */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "internal.h"

/* An event with `text` more bytes after its keys (vev_text): CSV events
 * keep their row there, JSON events their text and strings, so that one
 * malloc serves the whole event. The struct, slots and keys are zeroed, the
 * text is not. */
vigil_event *vev_alloc(int nslots, int ngroups, size_t text) {
    size_t sz = sizeof(vigil_event) + (size_t)nslots * sizeof(vigil_value) + (size_t)ngroups * sizeof(vkey);
    vigil_event *e = malloc(sz + text);
    if (!e) return NULL;
    memset(e, 0, sz);
    atomic_init(&e->refs, 1);
    e->nslots = nslots;
    e->ngroups = ngroups;
    e->slots = (vigil_value *)(e + 1);
    e->keys = (vkey *)(e->slots + nslots);
    return e;
}

char *vev_text(vigil_event *e) { return (char *)(e->keys + e->ngroups); }

vigil_event *vev_new(int nslots, int ngroups) { return vev_alloc(nslots, ngroups, 0); }

void vigil_event_retain(vigil_event *e) { atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed); }

void vigil_event_release(vigil_event *e) {
    if (!e || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1) return;
    char *t = vev_text(e);
    if (e->json != t) free(e->json);   /* JSON events keep json and strs inside the event */
    if (e->line != t && e->json != t) {   /* CSV events keep line and strs inside it */
        free(e->line);
        free(e->strs);
    }
    vigil_csv_header_destroy(e->csv);
    free(e);
}

int64_t vigil_event_time(const vigil_event *e) { return e->ts; }
const char *vigil_event_id(const vigil_event *e) { return e->id; }
const vigil_value *vigil_event_slot(const vigil_event *e, int f) { return &e->slots[f]; }

const char *vigil_event_key(const vigil_event *e, int g, size_t *len) {
    if (g < 0 || g >= e->ngroups || !e->keys[g].s) return NULL;
    if (len) *len = e->keys[g].len;
    return e->keys[g].s;
}

/* ---- time -------------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {   /* H. Hinnant's algorithm */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* '0'..'9' (what isdigit means in every locale), without the table lookup */
static int is_digit(char c) { return (unsigned char)(c - '0') < 10; }

static int digits(const char *s, size_t len, size_t at, int n, int *out) {
    if (at + (size_t)n > len) return -1;
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(s[at + i])) return -1;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return 0;
}

static uint64_t load8(const void *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* The shape of the card data and of most feeds, "2018-04-01T00:00:31Z":
 * the same checks and result as the general parser below, without
 * branches on the characters. s[0..8), s[8..16) and s[12..20) are XORed
 * with the expected bytes ('0' for a digit), after which a digit must be
 * at most 9 and a separator 0: byte-wise, (t & 0x7f) + (0x7f - limit) | t
 * has its high bit set iff t > limit (no carry crosses a byte, so the byte
 * order does not matter). Bytes 10 (T, t or space) and 19 (Z or z) are
 * checked apart (limit 0x7f there). */
static int rfc3339_fixed(const char *s, int64_t *ms) {
    static const unsigned char pat[3][8] = {{'0', '0', '0', '0', '-', '0', '0', '-'},
                                            {'0', '0', 0, '0', '0', ':', '0', '0'},
                                            {'0', ':', '0', '0', ':', '0', '0', 0}};
    static const unsigned char add[3][8] = {{0x76, 0x76, 0x76, 0x76, 0x7f, 0x76, 0x76, 0x7f},
                                            {0x76, 0x76, 0, 0x76, 0x76, 0x7f, 0x76, 0x76},
                                            {0x76, 0x7f, 0x76, 0x76, 0x7f, 0x76, 0x76, 0}};
    static const unsigned char at[3] = {0, 8, 12};
    const uint64_t low7 = UINT64_C(0x7f7f7f7f7f7f7f7f);
    uint64_t bad = 0;
    for (int k = 0; k < 3; k++) {
        uint64_t t = load8(s + at[k]) ^ load8(pat[k]);
        bad |= ((t & low7) + load8(add[k])) | t;
    }
    if ((bad & ~low7) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || (s[19] != 'Z' && s[19] != 'z'))
        return -1;
#define D(i) (s[i] - '0')
    int y = D(0) * 1000 + D(1) * 100 + D(2) * 10 + D(3), mo = D(5) * 10 + D(6), d = D(8) * 10 + D(9),
        h = D(11) * 10 + D(12), mi = D(14) * 10 + D(15), sec = D(17) * 10 + D(18);
#undef D
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000;
    return 0;
}

vigil_status vigil_time_parse_rfc3339(const char *s, size_t len, int64_t *ms) {
    if (len == 20 && rfc3339_fixed(s, ms) == 0) return VIGIL_OK;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || digits(s, len, 8, 2, &d))
        return VIGIL_EPARSE;
    size_t i = 10;
    int64_t frac = 0, off = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return VIGIL_EPARSE;
        if (digits(s, len, i + 1, 2, &h) || i + 3 >= len || s[i + 3] != ':' ||
            digits(s, len, i + 4, 2, &mi) || i + 6 >= len || s[i + 6] != ':' ||
            digits(s, len, i + 7, 2, &sec))
            return VIGIL_EPARSE;
        i += 9;
        if (i < len && s[i] == '.') {
            int nd = 0;
            i++;
            while (i < len && is_digit(s[i])) {
                if (nd < 3) frac = frac * 10 + (s[i] - '0');
                nd++;
                i++;
            }
            if (nd == 0) return VIGIL_EPARSE;
            for (; nd < 3; nd++) frac *= 10;
        }
        if (i >= len) return VIGIL_EPARSE;   /* RFC 3339 requires an offset */
        if (s[i] == 'Z' || s[i] == 'z') {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int oh, om;
            if (digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
                digits(s, len, i + 4, 2, &om))
                return VIGIL_EPARSE;
            off = (int64_t)(oh * 60 + om) * 60000 * (s[i] == '+' ? 1 : -1);
            i += 6;
        } else {
            return VIGIL_EPARSE;
        }
    }
    if (i != len || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return VIGIL_EPARSE;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac - off;
    return VIGIL_OK;
}

vigil_status vigil_time_from_number(double v, vigil_time_format f, int64_t *ms) {
    if (!isfinite(v) || fabs(v) > 9.0e15) return VIGIL_EPARSE;
    if (f == VIGIL_TIME_RFC3339) return VIGIL_EPARSE;
    if (f == VIGIL_TIME_S || (f == VIGIL_TIME_AUTO && fabs(v) < 1e11))
        *ms = (int64_t)llround(v * 1000.0);
    else
        *ms = (int64_t)llround(v);
    return VIGIL_OK;
}

void vigil_time_format_rfc3339(int64_t ms, char *buf, size_t n) {
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int msr = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, msr);
}

vigil_status vigil_time_format_parse(const char *s, vigil_time_format *f) {
    if (strcmp(s, "auto") == 0) *f = VIGIL_TIME_AUTO;
    else if (strcmp(s, "s") == 0) *f = VIGIL_TIME_S;
    else if (strcmp(s, "ms") == 0) *f = VIGIL_TIME_MS;
    else if (strcmp(s, "rfc3339") == 0) *f = VIGIL_TIME_RFC3339;
    else return VIGIL_EPARSE;
    return VIGIL_OK;
}

vigil_status vigil_decode_opts_set_list(const char *csv, const char **fields, int *n, char **store) {
    char *copy = strdup(csv);
    if (!copy) return VIGIL_ENOMEM;
    *n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == VIGIL_MAX_NAME_FIELDS) {
            free(copy);
            return VIGIL_EINVAL;
        }
        fields[(*n)++] = t;
    }
    *store = copy;
    return *n ? VIGIL_OK : VIGIL_EINVAL;
}

void vev_join_names(const char *const *fields, int n, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    if (!fields || n == 0) {
        snprintf(buf, len, "'ts'");
        return;
    }
    for (int i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s'%s'", i ? (i + 1 == n ? " or " : ", ") : "", fields[i]);
}

vigil_status vev_check_keys(const vigil_ruleset *rs, vigil_event *e, int require, vigil_error *err) {
    if (!require) return VIGIL_OK;
    int any = 0;
    for (int g = 0; g < rs->ngroups; g++) any |= e->keys[g].s != NULL;
    if (any || rs->ngroups == 0) return VIGIL_OK;
    return vigil_error_set(err, VIGIL_ENOKEY, "event has none of the key fields of the rules (first: '%s')",
                           rs->groups[0].key);
}

/* ---- CSV --------------------------------------------------------------------- */

#define CSV_MAX_COLS 256

/* Split one CSV line in place into fields (RFC 4180: quotes, doubled quotes).
 * Returns the field count, or -1 on a malformed line. */
static int csv_split(char *line, size_t len, char **f, size_t *fl, int max) {
    int n = 0;
    size_t i = 0;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
    for (;;) {
        if (n == max) return -1;
        if (i < len && line[i] == '"') {
            size_t w = ++i, st = w;
            for (;;) {
                if (i >= len) return -1;
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        line[w++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                line[w++] = line[i++];
            }
            f[n] = line + st;
            fl[n++] = w - st;
            if (i < len && line[i] != ',') return -1;
        } else {
            size_t st = i;
            while (i < len && line[i] != ',') i++;
            f[n] = line + st;
            fl[n++] = i - st;
        }
        if (i >= len) break;
        i++;   /* comma */
    }
    return n;
}

/* Bytes of w equal to zero, as the high bit of each such byte (exact: no
 * carry crosses a byte; "Bit Twiddling Hacks", determine if a word has a
 * zero byte). */
static uint64_t zero_bytes(uint64_t w) {
    const uint64_t low7 = UINT64_C(0x7f7f7f7f7f7f7f7f);
    return ~(((w & low7) + low7) | w | low7);
}

/* csv_split for decoding a row without quotes (the usual row): the same
 * fields, each NUL-terminated in place (the comma becomes the NUL). Commas
 * are found eight bytes at a time: s[len .. len + 8) must be readable and
 * NUL. Returns the field count, -1 where csv_split would, or -2 if the row
 * has a '"' anywhere (then csv_split does the row). */
static int csv_split_plain(char *s, size_t len, char **f, size_t *fl, int max) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t commas = UINT64_C(0x2c2c2c2c2c2c2c2c), quotes = UINT64_C(0x2222222222222222);
    int n = 0;
    size_t st = 0;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w;   /* bytes past len are 0: neither comma nor quote */
        memcpy(&w, s + i, 8);
        if (zero_bytes(w ^ quotes)) return -2;
        for (uint64_t m = zero_bytes(w ^ commas); m; m &= m - 1) {
            size_t at = i + (size_t)(__builtin_ctzll(m) >> 3);
            if (n == max) return -1;
            f[n] = s + st;
            fl[n++] = at - st;
            s[at] = '\0';
            st = at + 1;
        }
    }
    if (n == max) return -1;
    f[n] = s + st;
    fl[n++] = len - st;
    return n;
#else
    if (memchr(s, '"', len)) return -2;
    int n = csv_split(s, len, f, fl, max);
    for (int i = 0; i < n; i++) f[i][fl[i]] = '\0';
    return n;
#endif
}

/* A header as event.c allocates it: the shared struct, then each key
 * group's column, mapped once for the ruleset the header was created for
 * (as col_field is) instead of by name on every row. */
typedef struct csv_hdr {
    struct vigil_csv_header pub;   /* first: a vigil_csv_header * is a csv_hdr * */
    const vigil_ruleset *rs;
    int ngroups;
    int group_col[];               /* key group -> column or -1 */
} csv_hdr;

static int col_of(const vigil_csv_header *h, const char *name);

vigil_status vigil_csv_header_create(const vigil_ruleset *rs, const char *line, size_t len,
                                     vigil_csv_header **out, vigil_error *err) {
    char *copy = malloc(len + 1);
    char *f[CSV_MAX_COLS];
    size_t fl[CSV_MAX_COLS];
    if (!copy) return VIGIL_ENOMEM;
    memcpy(copy, line, len);
    copy[len] = '\0';
    int n = csv_split(copy, len, f, fl, CSV_MAX_COLS);
    if (n <= 0) {
        free(copy);
        return vigil_error_set(err, VIGIL_EPARSE, "malformed CSV header (at most %d columns)", CSV_MAX_COLS);
    }
    csv_hdr *x = calloc(1, sizeof *x + (size_t)rs->ngroups * sizeof(int));
    vigil_csv_header *h = x ? &x->pub : NULL;
    if (!h || !(h->names = calloc((size_t)n, sizeof *h->names)) || !(h->col_field = calloc((size_t)n, sizeof(int)))) {
        free(copy);
        if (h) free(h->names);
        free(h);
        return VIGIL_ENOMEM;
    }
    atomic_init(&h->refs, 1);
    h->ncols = n;
    for (int i = 0; i < n; i++) {
        /* strip a UTF-8 BOM from the first column */
        if (i == 0 && fl[0] >= 3 && memcmp(f[0], "\xEF\xBB\xBF", 3) == 0) {
            f[0] += 3;
            fl[0] -= 3;
        }
        h->names[i] = strndup(f[i], fl[i]);
        if (!h->names[i]) {
            h->ncols = i;
            vigil_csv_header_destroy(h);
            free(copy);
            return VIGIL_ENOMEM;
        }
        h->col_field[i] = vrs_field_index(rs, h->names[i]);
    }
    free(copy);
    x->rs = rs;
    x->ngroups = rs->ngroups;
    for (int g = 0; g < rs->ngroups; g++) x->group_col[g] = col_of(h, rs->groups[g].key);
    *out = h;
    return VIGIL_OK;
}

void vigil_csv_header_destroy(vigil_csv_header *h) {
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1) return;
    for (int i = 0; i < h->ncols; i++) free(h->names[i]);
    free(h->names);
    free(h->col_field);
    free(h);
}

enum { NUM_NO, NUM_YES, NUM_ASK };   /* not a number, a number, ask strtod */

/* 10^0 .. 10^22: every one exactly a double (5^22 < 2^53). */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path (W. D. Clinger, "How to Read Floating Point Numbers
 * Accurately", PLDI 1990; the first step of every correctly rounding
 * strtod): a decimal [+-]digits[.digits][(e|E)[+-]digits] whose digits
 * make an integer M <= 2^53 and whose exponent is 10^k, |k| <= 22, is
 * M * 10^k or M / 10^-k: both operands are exact doubles, so the one
 * rounding of that operation gives the correctly rounded value, which is
 * what glibc's strtod returns (in any rounding mode). Answers NUM_ASK for
 * whatever else strtod might accept (hex, inf, nan, more digits, a larger
 * exponent, an exponent without digits) and NUM_NO only where strtod
 * stops before the end of the field: the decimal syntax ends there, and
 * the stop is not the 'x' of "0x" nor a NUL (strtod would stop there and
 * accept). Assumes the "C" LC_NUMERIC locale (radix '.'): vigil never
 * calls setlocale. Needs FLT_EVAL_METHOD 0 (no excess precision). */
static int number_fast(const char *s, size_t n, double *v) {
#if FLT_EVAL_METHOD == 0
    const char *p = s, *end = s + n;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    const char *d0 = p;
    while (p < end && *p == '0') p++;   /* leading zeros: not significant */
    const char *ds = p;
    uint64_t m = 0;   /* wraps past 19 digits: then nd says ask */
    for (; p < end && is_digit(*p); p++) m = m * 10 + (uint64_t)(*p - '0');
    ptrdiff_t nd = p - ds, e10 = 0;
    int any = p > d0;
    if (p < end && *p == '.') {
        const char *fs = ++p;
        if (nd == 0)
            while (p < end && *p == '0') p++;   /* 0.000123: zeros after the point only scale */
        const char *fd = p;
        for (; p < end && is_digit(*p); p++) m = m * 10 + (uint64_t)(*p - '0');
        nd += p - fd;
        e10 = -(p - fs);
        any |= p > fs;
    }
    if (!any || nd > 19) return NUM_ASK;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        int eneg = 0;
        ptrdiff_t ex = 0;
        if (q < end && (*q == '+' || *q == '-')) eneg = *q++ == '-';
        if (q >= end || !is_digit(*q)) return NUM_ASK;
        for (; q < end && is_digit(*q); q++)
            if (ex < 100000) ex = ex * 10 + (*q - '0');
        e10 += eneg ? -ex : ex;
        p = q;
    }
    if (p < end) return *p == 'x' || *p == 'X' || *p == '\0' ? NUM_ASK : NUM_NO;
    if (e10 < -22 || e10 > 22 || m > (UINT64_C(1) << 53)) return NUM_ASK;
    double d = (double)m;
    d = e10 < 0 ? d / pow10_exact[-e10] : d * pow10_exact[e10];
    *v = neg ? -d : d;
    return NUM_YES;
#else
    (void)s;
    (void)n;
    (void)v;
    return NUM_ASK;
#endif
}

#define NUMBER_MAX 63   /* longer values are text */

static __attribute__((noinline)) int number_strtod(const char *s, size_t n, double *v) {
    char tmp[NUMBER_MAX + 1];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d)) return 0;
    *v = d;
    return 1;
}

/* A CSV value is a number when strtod reads all of it (at most 63 bytes,
 * starting with a digit, sign or '.'), finite and in range. */
static int parse_number(const char *s, size_t n, double *v) {
    if (n == 0 || n > NUMBER_MAX) return 0;
    if (!(is_digit(s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')) return 0;
    int r = number_fast(s, n, v);
    if (r != NUM_ASK) return r == NUM_YES;
    return number_strtod(s, n, v);
}

double vev_json_number(const char *s, size_t n) {
    double v;
    if (n <= NUMBER_MAX && number_fast(s, n, &v) == NUM_YES) return v;
    char tmp[NUMBER_MAX + 1];
    if (n > NUMBER_MAX) n = NUMBER_MAX;   /* json_scan.c passes no more */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

static int col_of(const vigil_csv_header *h, const char *name) {
    for (int i = 0; i < h->ncols; i++)
        if (strcmp(h->names[i], name) == 0) return i;
    return -1;
}

vigil_status vigil_event_decode_csv(const vigil_ruleset *rs, const vigil_decode_opts *o, vigil_csv_header *h,
                                    const char *line, size_t len, const char *fallback_id, int require_keys,
                                    vigil_event **out, vigil_error *err) {
    static const vigil_decode_opts defaults = {.time_fields = {"ts"}, .ntime_fields = 1,
                                               .id_fields = {"id"}, .nid_fields = 1};
    if (!o) o = &defaults;
    *out = NULL;
    if (memchr(line, '\0', len))   /* the line is kept and re-split as text later */
        return vigil_error_set(err, VIGIL_EPARSE, "CSV line contains a NUL byte at column %zu",
                               (size_t)((const char *)memchr(line, '\0', len) - line) + 1);
    char *f[CSV_MAX_COLS];
    size_t fl[CSV_MAX_COLS];
    /* One allocation: the event, then the row as given (kept for rendering
     * and field_text), then a copy split in place into NUL-terminated
     * fields that the slots, keys and id point into, then room for the
     * fallback id and 7 bytes for csv_split_plain to read past the row
     * (vev_text; vigil_event_release frees it all at once). */
    size_t ll = len;
    while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) ll--;
    const char *fid = fallback_id ? fallback_id : "";
    size_t fidl = strlen(fid);
    vigil_event *e = vev_alloc(rs->nfields, rs->ngroups, 2 * (ll + 1) + fidl + 1 + 7);
    if (!e) return VIGIL_ENOMEM;
    e->line = vev_text(e);
    memcpy(e->line, line, ll);
    e->line[ll] = '\0';
    e->line_len = ll;
    e->strs = e->line + ll + 1;
    memcpy(e->strs, line, ll);
    memset(e->strs + ll, 0, 8);
    int n = csv_split_plain(e->strs, ll, f, fl, CSV_MAX_COLS);
    if (n == -2) {   /* quoted fields: split a fresh copy the general way */
        memcpy(e->strs, line, ll);
        n = csv_split(e->strs, ll, f, fl, CSV_MAX_COLS);
        for (int i = 0; i < n; i++) f[i][fl[i]] = '\0';   /* fields end at a comma or quote: safe */
    }
    if (n != h->ncols) {
        vigil_event_release(e);
        if (n < 0) return vigil_error_set(err, VIGIL_EPARSE, "malformed CSV row (unbalanced quotes)");
        return vigil_error_set(err, VIGIL_EPARSE, "CSV row has %d columns, the header has %d", n, h->ncols);
    }
    for (int i = 0; i < n; i++) {
        int fi = h->col_field[i];
        if (fi < 0 || fi >= rs->nfields) continue;
        vigil_value *v = &e->slots[fi];
        double d;
        if (fl[i] == 0) v->type = VIGIL_T_MISSING;
        else if (parse_number(f[i], fl[i], &d)) {
            v->type = VIGIL_T_NUM;
            v->u.num = d;
        } else {
            v->type = VIGIL_T_STR;
            v->u.str = f[i];
            v->len = (uint32_t)fl[i];
        }
    }
    if (o->type_default && rs->type_field >= 0 && e->slots[rs->type_field].type == VIGIL_T_MISSING) {
        e->slots[rs->type_field] = (vigil_value){.type = VIGIL_T_STR, .len = (uint32_t)strlen(o->type_default),
                                                 .u.str = o->type_default};
        e->type_default = o->type_default;   /* must outlive the event: the caller's option string */
    }
    const csv_hdr *x = (const csv_hdr *)h;
    for (int g = 0; g < rs->ngroups; g++) {
        int c = x->rs == rs && g < x->ngroups ? x->group_col[g] : col_of(h, rs->groups[g].key);
        e->keys[g].s = NULL;
        if (c >= 0 && fl[c] > 0) {
            e->keys[g].s = f[c];
            e->keys[g].len = (uint32_t)fl[c];
        }
    }
    /* time */
    int tc = -1;
    const char *tname = o->ntime_fields ? o->time_fields[0] : "ts";
    for (int i = 0; i < (o->ntime_fields ? o->ntime_fields : 1) && tc < 0; i++) {
        const char *nm = o->ntime_fields ? o->time_fields[i] : "ts";
        int c = col_of(h, nm);
        if (c >= 0 && fl[c] > 0) {
            tc = c;
            tname = nm;
        }
    }
    if (tc < 0) {
        char names[256];
        vev_join_names(o->ntime_fields ? o->time_fields : NULL, o->ntime_fields, names, sizeof names);
        vigil_event_release(e);
        return vigil_error_set(err, VIGIL_ENOTIME, "missing event time field (looked for %s)", names);
    }
    double d;
    vigil_status s;
    if (o->time_format != VIGIL_TIME_RFC3339 && parse_number(f[tc], fl[tc], &d))
        s = vigil_time_from_number(d, o->time_format, &e->ts);
    else if (o->time_format == VIGIL_TIME_S || o->time_format == VIGIL_TIME_MS)
        s = VIGIL_EPARSE;
    else
        s = vigil_time_parse_rfc3339(f[tc], fl[tc], &e->ts);
    if (s != VIGIL_OK) {   /* the message quotes the field: release the event after it */
        s = vigil_error_set(err, VIGIL_ENOTIME, "event time field '%s' is not a valid time: \"%.*s\"", tname,
                            (int)(fl[tc] > 40 ? 40 : fl[tc]), f[tc]);
        vigil_event_release(e);
        return s;
    }
    /* id */
    int ic = -1;
    for (int i = 0; i < (o->nid_fields ? o->nid_fields : 1) && ic < 0; i++) {
        int c = col_of(h, o->nid_fields ? o->id_fields[i] : "id");
        if (c >= 0 && fl[c] > 0) ic = c;
    }
    if (ic >= 0) {
        e->id = f[ic];
    } else {   /* the fallback id goes after the split row, in the room left for it */
        memcpy(e->strs + ll + 1, fid, fidl + 1);
        e->id = e->strs + ll + 1;
    }
    atomic_fetch_add(&h->refs, 1);
    e->csv = h;
    vigil_status ks = vev_check_keys(rs, e, require_keys, err);
    if (ks != VIGIL_OK) {
        vigil_event_release(e);
        return ks;
    }
    *out = e;
    return VIGIL_OK;
}

/* Render a CSV event as a JSON object: numbers as numbers, the rest as
 * strings, empty values omitted; plus "type" when set by TYPE=. */
static char *render_csv(const vigil_event *e, size_t *olen) {
    const vigil_csv_header *h = e->csv;
    char *copy = strdup(e->line);
    char *f[CSV_MAX_COLS];
    size_t fl[CSV_MAX_COLS];
    if (!copy) return NULL;
    int n = csv_split(copy, e->line_len, f, fl, CSV_MAX_COLS);
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < n && i < h->ncols; i++) {
        if (fl[i] == 0) continue;
        double d;
        char save = f[i][fl[i]];
        f[i][fl[i]] = '\0';
        if (parse_number(f[i], fl[i], &d)) cJSON_AddItemToObject(o, h->names[i], cJSON_CreateRaw(f[i]));
        else cJSON_AddStringToObject(o, h->names[i], f[i]);
        f[i][fl[i]] = save;
    }
    if (o && e->type_default && col_of(h, "type") < 0) cJSON_AddStringToObject(o, "type", e->type_default);
    free(copy);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (s) *olen = strlen(s);
    return s;
}

const char *vigil_event_json(const vigil_event *e, size_t *len) {
    vigil_event *m = (vigil_event *)e;   /* lazy render; CSV events are used by one thread (replay) */
    if (!m->json && m->csv) m->json = render_csv(m, &m->json_len);
    if (len) *len = m->json ? m->json_len : 2;
    return m->json ? m->json : "{}";
}

int vigil_event_field_text(const vigil_event *e, const char *path, char *buf, size_t n) {
    if (!n) return 0;
    buf[0] = '\0';
    if (e->csv) {
        int c = col_of(e->csv, path);
        if (c < 0) return 0;
        char *copy = strdup(e->line);
        char *f[CSV_MAX_COLS];
        size_t fl[CSV_MAX_COLS];
        if (!copy) return 0;
        int nf = csv_split(copy, e->line_len, f, fl, CSV_MAX_COLS);
        int ok = c < nf && fl[c] > 0;
        if (ok) snprintf(buf, n, "%.*s", (int)fl[c], f[c]);
        free(copy);
        return ok;
    }
    return vev_json_field_text(e, path, buf, n);
}
