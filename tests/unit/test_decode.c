/* test_decode.c — the CSV decoder's fast paths (engine/src/event.c) against
 * the code they replace, through the public API.
 *
 * event.c converts a CSV value to a number without strtod when Clinger's
 * fast path applies, splits rows without quotes eight bytes at a time and
 * parses "YYYY-MM-DDTHH:MM:SSZ" times without the general RFC 3339 parser.
 * Each must give exactly what the general code gives, so the references here
 * are that code as it was: ref_number (strtod on the whole value: accepted,
 * finite, no ERANGE) and ref_split (RFC 4180 splitting), and for times the
 * general parser itself (the same instant written "+00:00" instead of "Z"
 * takes it). Values: a fixed list of edge cases (15/16/17/19/20 digits,
 * exponents at ±22 and beyond, leading zeros, ".5", "5.", signs, hex,
 * inf/nan, range errors, 63/64 bytes), then values drawn from a seeded
 * PRNG (xorshift64*, VIGIL_DECODE_SEED, default 20261121; the seed is printed
 * on failure): decimals of 1-20 significant digits with random point and
 * exponent, doubles printed by %.*g and %.*f, and short strings over
 * "0123456789.eE+-xXin" that hit the syntax corners. Numbers must be
 * bit-identical (memcmp of the doubles, so -0.0 counts). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "vt_rand.h"
#include "vigil/engine.h"

static uint64_t seed0 = 20261121, rng;

static uint64_t next_rand(void) { return vt_xorshift(&rng); }
static unsigned below(unsigned n) { return (unsigned)(next_rand() % n); }

/* ---- references: the decoder's code before the fast paths ------------------ */

static int ref_number(const char *s, size_t n, double *v) {
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return 0;
    if (!(isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || s[0] == '.')) return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d)) return 0;
    *v = d;
    return 1;
}

static int ref_split(char *line, size_t len, char **f, size_t *fl, int max) {
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
        i++;
    }
    return n;
}

/* ---- a ruleset whose fields are the columns a, b, c, d ---------------------- */

#define NCOLS 4
static const char *colname[NCOLS] = {"a", "b", "c", "d"};
static vigil_ruleset *rs;
static int slot_of[NCOLS];   /* column -> field slot */
static vigil_csv_header *hdr;
static uint64_t failures_shown;

static vigil_expr *exists(const char *f) {
    vigil_expr *a[1] = {vigil_expr_field(rs, f)};
    return vigil_expr_apply(rs, VIGIL_X_EXISTS, a, 1);
}

static int setup(void) {
    const char *env = getenv("VIGIL_DECODE_SEED");
    if (env) seed0 = strtoull(env, NULL, 10);
    rs = vigil_ruleset_create();
    vigil_step_def st[NCOLS];
    memset(st, 0, sizeof st);
    for (int i = 0; i < NCOLS; i++) {
        st[i].name = colname[i];
        st[i].min = st[i].max = 1;
        st[i].cond = exists(colname[i]);
    }
    vigil_rule_def d = {.name = "cols", .version = 1, .key = "k", .steps = st, .nsteps = NCOLS};
    vigil_error err;
    if (vigil_ruleset_add_rule(rs, &d, &err) != VIGIL_OK || vigil_ruleset_finalize(rs, &err) != VIGIL_OK) return 1;
    const char *h = "id,ts,k,a,b,c,d\r\n";
    if (vigil_csv_header_create(rs, h, strlen(h), &hdr, &err) != VIGIL_OK) return 1;
    /* find each column's slot: a row of distinct numbers */
    const char *row = "x,1,k1,101,102,103,104";
    vigil_event *ev;
    if (vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err) != VIGIL_OK) return 1;
    for (int c = 0; c < NCOLS; c++) {
        slot_of[c] = -1;
        for (int f = 0; f < vigil_ruleset_field_count(rs); f++) {
            const vigil_value *v = vigil_event_slot(ev, f);
            if (v->type == VIGIL_T_NUM && v->u.num == 101 + c) slot_of[c] = f;
        }
        if (slot_of[c] < 0) return 1;
    }
    vigil_event_release(ev);
    return 0;
}

static int teardown(void) {
    vigil_csv_header_destroy(hdr);
    vigil_ruleset_release(rs);
    return 0;
}

/* Decode "id,1,k1,<value>,x,,y" and compare column a with the reference. */
static int check_number(const char *val) {
    char row[256];
    int len = snprintf(row, sizeof row, "r,1,k1,%s,x,,y", val);
    size_t n = strlen(val);
    vigil_event *ev;
    vigil_error err;
    if (vigil_event_decode_csv(rs, NULL, hdr, row, (size_t)len, NULL, 1, &ev, &err) != VIGIL_OK) {
        if (failures_shown++ < 20) printf("\n  seed %llu: \"%s\" not decoded: %s\n", (unsigned long long)seed0, val, err.msg);
        return 0;
    }
    const vigil_value *v = vigil_event_slot(ev, slot_of[0]);
    double want;
    int ok;
    if (n == 0) ok = v->type == VIGIL_T_MISSING;
    else if (ref_number(val, n, &want)) ok = v->type == VIGIL_T_NUM && memcmp(&v->u.num, &want, sizeof want) == 0;
    else ok = v->type == VIGIL_T_STR && v->len == n && memcmp(v->u.str, val, n) == 0 && v->u.str[n] == '\0';
    if (!ok && failures_shown++ < 20)
        printf("\n  seed %llu: \"%s\": got type %d %.17g, strtod says %s %.17g\n", (unsigned long long)seed0, val,
               (int)v->type, v->type == VIGIL_T_NUM ? v->u.num : 0.0,
               ref_number(val, n, &want) ? "number" : "text", ref_number(val, n, &want) ? want : 0.0);
    /* the other columns are untouched by the value */
    ok &= vigil_event_slot(ev, slot_of[1])->type == VIGIL_T_STR && vigil_event_slot(ev, slot_of[2])->type == VIGIL_T_MISSING;
    vigil_event_release(ev);
    return ok;
}

static void test_number_edge_cases(void) {
    static const char *vals[] = {
        "0", "-0", "+0", "00", "0.0", "-0.0", "-0e5", "0e999999", "0.", ".0", ".5", "5.", "-.5", "+.5", "-5.", ".",
        "-", "+", "-.", "+.", "..5", "5..", "1.2.3", "--5", "+-5", "-+5", " 5", "5 ", "\t5", "5\t", "1_000",
        "12abc", "2018-04-01T00:00:31Z", "2018-04-01", "57.16", "0.01", "100.00", "4961", "3156",
        /* exponents */
        "e5", "E5", "1e5", "1E5", "1e+5", "1e-5", "1E-05", "1e0", "1e-0", "1e", "1e+", "1e-", "1.5e", "1.e3",
        ".e3", "-.e3", "1e5.5", "1e5e5", "1ee5", "1e+-5", "1e22", "1e23", "1e-22", "1e-23", "9e22", "9e-22",
        "123456789012345e7", "123456789012345e8", "1.5e300", "1e308", "1.7976931348623157e308",
        "1.7976931348623158e308", "1.8e308", "1e309", "-1e309", "2.2250738585072014e-308",
        "2.2250738585072011e-308", "4.9e-324", "5e-324", "2.5e-324", "1e-400", "-1e-400", "1e99999999999999999999",
        "1e-99999999999999999999", "0.000000000000000000001", "0.0000000000000000000001",
        "0.00000000000000000000001", "000000000000000000000000000001", "000000000000000000000000000001.5",
        "1000000000000000000000", "10000000000000000000000", "100000000000000000000000",
        /* significant digits around 15, 16, 17, 19, 20 and 2^53 */
        "123456789012345", "1234567890123456", "12345678901234567", "123456789012345678",
        "1234567890123456789", "12345678901234567890", "9999999999999999999", "99999999999999999999",
        "18446744073709551615", "18446744073709551616", "9007199254740991", "9007199254740992",
        "9007199254740993", "9007199254740994", "9007199254740995", "-9007199254740993", "900719925474099.3",
        "90071992547409.93", "0.9007199254740993", "0.1", "0.2", "0.3", "0.7", "1.1", "2.675", "1.005",
        "0.1e1", "3.14159265358979", "3.141592653589793", "3.1415926535897932", "2.718281828459045235",
        "1.23456789012345e-7", "1234567890.12345", "1234567890.123456789", "0.3333333333333333",
        "0.33333333333333333", "4503599627370496.5", "4503599627370497.5", "8.589973e9", "1e-7", "1.5e-10",
        /* hex, inf and nan: strtod takes hex; inf and nan are not finite */
        "0x10", "0X10", "0x1p3", "0x1.8p1", "-0x1.8p1", "+0x10", "0x", "0xg", "0x1p", "00x1", "1x", "0.5x",
        "inf", "+inf", "-inf", "+INF", "-Infinity", "+infinity", "-infx", "nan", "+nan", "-nan", "+nan(123)",
        "-nan(abc)", "+nanx", "+in", "-n",
        /* 63 and 64 bytes: the longest number and the first text */
        "100000000000000000000000000000000000000000000000000000000000000",
        "1000000000000000000000000000000000000000000000000000000000000000",
        "0.00000000000000000000000000000000000000000000000000000000000001",
        "0.000000000000000000000000000000000000000000000000000000000000001",
        "",
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) bad += !check_number(vals[i]);
    CU_ASSERT_EQUAL(bad, 0);
}

static void random_decimal(char *buf, size_t cap) {
    char digs[32];
    int nd = 1 + (int)below(20), nz = below(4) == 0 ? (int)below(4) : 0;
    for (int i = 0; i < nd; i++) digs[i] = (char)('0' + below(10));
    size_t o = 0;
    if (below(4) == 0) buf[o++] = below(2) ? '-' : '+';
    for (int i = 0; i < nz; i++) buf[o++] = '0';
    int point = below(3) == 0 ? -1 : (int)below((unsigned)nd + 1);   /* digits before the point */
    for (int i = 0; i <= nd; i++) {
        if (i == point) buf[o++] = '.';
        if (i < nd) buf[o++] = digs[i];
    }
    if (below(3) == 0) {
        int e = (int)below(61) - 30;
        o += (size_t)snprintf(buf + o, cap - o, "%c%s%d", below(2) ? 'e' : 'E', e >= 0 && below(2) ? "+" : "", e);
    }
    buf[o] = '\0';
}

static void random_printed(char *buf, size_t cap) {
    uint64_t bits = next_rand();
    double d;
    switch (below(3)) {
    case 0: memcpy(&d, &bits, sizeof d); break;                                  /* any double */
    case 1: d = (double)(bits % 100000000) / 100.0; break;                       /* amounts */
    default: d = ldexp((double)(bits >> 11), (int)below(120) - 100); break;
    }
    if (!isfinite(d)) d = 1.5;
    if (below(2)) snprintf(buf, cap, "%.*g", 1 + (int)below(17), d);
    else snprintf(buf, cap, "%.*f", (int)below(11), fmod(d, 1e12));
}

static void random_syntax(char *buf) {
    static const char alpha[] = "0123456789.eE+-xXin";
    int n = 1 + (int)below(12);
    for (int i = 0; i < n; i++) buf[i] = below(3) ? alpha[below(10)] : alpha[below(sizeof alpha - 1)];
    buf[n] = '\0';
}

static void test_number_random(void) {
    rng = seed0 * 2 + 1;
    int bad = 0;
    char buf[80];
    for (int i = 0; i < 150000; i++) {
        switch (i % 3) {
        case 0: random_decimal(buf, sizeof buf); break;
        case 1: random_printed(buf, sizeof buf); break;
        default: random_syntax(buf); break;
        }
        bad += !check_number(buf);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Rows with quotes, empty fields, commas inside quotes and every length up
 * to 40: the slots, key and id must be the reference split's fields. */
static void test_split_random(void) {
    rng = seed0 * 2 + 3;
    static const char alpha[] = "ab1.,\"x";
    int bad = 0;
    for (int t = 0; t < 30000; t++) {
        char row[512], ref[512];
        size_t o = 0;
        o += (size_t)snprintf(row, sizeof row, "id%d,%d,", t, 1 + t);
        int ncols = 5 + (below(20) == 0 ? (int)below(3) - 1 : 0);   /* k a b c d, sometimes one too few/many */
        for (int c = 0; c < ncols; c++) {
            if (c) row[o++] = ',';
            int quoted = below(4) == 0, n = (int)below(9);
            if (quoted) row[o++] = '"';
            for (int i = 0; i < n; i++) {
                char ch = below(3) ? alpha[below(3)] : alpha[below(sizeof alpha - 1)];
                if (quoted && ch == '"' && below(8)) row[o++] = '"';   /* mostly doubled */
                if (!quoted && (ch == ',' || ch == '"') && below(8)) ch = 'z';
                row[o++] = ch;
            }
            if (quoted && below(16)) row[o++] = '"';
        }
        if (below(4) == 0) row[o++] = '\r';
        if (below(2)) row[o++] = '\n';
        row[o] = '\0';
        memcpy(ref, row, o + 1);
        char *f[16];
        size_t fl[16];
        int rn = ref_split(ref, o, f, fl, 16);
        vigil_event *ev = NULL;
        vigil_error err;
        vigil_status s = vigil_event_decode_csv(rs, NULL, hdr, row, o, "fb", 0, &ev, &err);
        int ok;
        if (rn != 7) {
            ok = s == VIGIL_EPARSE && ev == NULL;
        } else if (s != VIGIL_OK) {
            ok = 0;
        } else {
            ok = fl[0] ? strlen(vigil_event_id(ev)) == fl[0] && memcmp(vigil_event_id(ev), f[0], fl[0]) == 0
                       : strcmp(vigil_event_id(ev), "fb") == 0;
            size_t kl;
            const char *k = vigil_event_key(ev, 0, &kl);
            ok &= fl[2] ? k && kl == fl[2] && memcmp(k, f[2], kl) == 0 && k[kl] == '\0' : k == NULL;
            for (int c = 0; c < NCOLS; c++) {
                const vigil_value *v = vigil_event_slot(ev, slot_of[c]);
                const char *want = f[3 + c];
                size_t wl = fl[3 + c];
                double d;
                if (wl == 0) ok &= v->type == VIGIL_T_MISSING;
                else if (ref_number(want, wl, &d)) ok &= v->type == VIGIL_T_NUM && memcmp(&v->u.num, &d, sizeof d) == 0;
                else ok &= v->type == VIGIL_T_STR && v->len == wl && memcmp(v->u.str, want, wl) == 0 && v->u.str[wl] == '\0';
            }
            char txt[64];   /* the row is kept as it was: field_text re-splits it */
            ok &= vigil_event_field_text(ev, "a", txt, sizeof txt) == (fl[3] > 0);
            if (fl[3] > 0 && fl[3] < sizeof txt) ok &= strlen(txt) == fl[3] && memcmp(txt, f[3], fl[3]) == 0;
            ok &= vigil_event_json(ev, NULL)[0] == '{';
        }
        if (!ok && failures_shown++ < 20)
            printf("\n  seed %llu: row \"%s\": status %d, reference %d fields\n", (unsigned long long)seed0, row, (int)s, rn);
        bad += !ok;
        vigil_event_release(ev);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_rows(void) {
    vigil_event *ev;
    vigil_error err;
    /* quoted fields, a quote inside a field, the id fallback when the cell is empty */
    const char *row = ",1,\"k,1\",\"1.5\",a\"b,\"\",\"x\"\"y\"\r\n";
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), "file.csv:7", 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), "file.csv:7");
    CU_ASSERT_STRING_EQUAL(vigil_event_key(ev, 0, NULL), "k,1");
    CU_ASSERT_EQUAL(vigil_event_slot(ev, slot_of[0])->type, VIGIL_T_NUM);
    CU_ASSERT_EQUAL(vigil_event_slot(ev, slot_of[0])->u.num, 1.5);
    CU_ASSERT_STRING_EQUAL(vigil_event_slot(ev, slot_of[1])->u.str, "a\"b");
    CU_ASSERT_EQUAL(vigil_event_slot(ev, slot_of[2])->type, VIGIL_T_MISSING);
    CU_ASSERT_STRING_EQUAL(vigil_event_slot(ev, slot_of[3])->u.str, "x\"y");
    CU_ASSERT_PTR_NOT_NULL(strstr(vigil_event_json(ev, NULL), "\"d\":\"x\\\"y\""));
    vigil_event_release(ev);
    /* no fallback: an empty id cell gives "" (input.c then retries with one) */
    row = ",1,k,1,2,3,4";
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), "");
    vigil_event_release(ev);
    /* errors: unbalanced quote, column count, NUL byte, no time, bad time, no key */
    row = "i,1,k,\"1,2,3,4";
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unbalanced"));
    row = "i,1,k,1,2,3";
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_EPARSE);
    CU_ASSERT_STRING_EQUAL(err.msg, "CSV row has 6 columns, the header has 7");
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, "i,1,k,1\0,2,3,4", 14, NULL, 1, &ev, &err), VIGIL_EPARSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NUL byte at column 8"));
    row = "i,,k,1,2,3,4";
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_ENOTIME);
    row = "i,2018-04-01T24:00:00Z,k,1,2,3,4";
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_ENOTIME);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "\"2018-04-01T24:00:00Z\""));
    row = "i,1,,1,2,3,4";
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_ENOKEY);
    /* more than 256 columns */
    char big[1024];
    size_t o = 0;
    for (int i = 0; i < 300; i++) big[o++] = ',';
    CU_ASSERT_EQUAL(vigil_event_decode_csv(rs, NULL, hdr, big, o, NULL, 1, &ev, &err), VIGIL_EPARSE);
    /* the time column as text in the card data's shape and as epoch s */
    row = "i,2018-04-01T00:00:31Z,k,1,2,3,4";
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_event_time(ev), 1522540831000LL);
    vigil_event_release(ev);
    row = "i,1522540831.5,k,1,2,3,4";
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_csv(rs, NULL, hdr, row, strlen(row), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_event_time(ev), 1522540831500LL);
    vigil_event_release(ev);
    /* a header without an id column: the fallback id, kept with the event */
    vigil_csv_header *h2;
    const char *hd = "ts,k,a";
    CU_ASSERT_EQUAL_FATAL(vigil_csv_header_create(rs, hd, strlen(hd), &h2, &err), VIGIL_OK);
    row = "1,k,7";
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_csv(rs, NULL, h2, row, strlen(row), "in.csv:2", 1, &ev, &err), VIGIL_OK);
    vigil_csv_header_destroy(h2);   /* the event keeps its own reference */
    CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), "in.csv:2");
    CU_ASSERT_STRING_EQUAL(vigil_event_key(ev, 0, NULL), "k");
    CU_ASSERT_STRING_EQUAL(vigil_event_json(ev, NULL), "{\"ts\":1,\"k\":\"k\",\"a\":7}");
    vigil_event_release(ev);
}

/* "YYYY-MM-DDTHH:MM:SSZ" (the fixed-shape path) against the same text with
 * "+00:00" (the general parser): same status, same instant. With anything
 * but Z or z last, 20 bytes are no RFC 3339 time. */
static int check_time(const char *z) {
    char off[40];
    snprintf(off, sizeof off, "%.19s+00:00", z);
    int64_t a = -1, b = -2;
    vigil_status sa = vigil_time_parse_rfc3339(z, 20, &a), sb = vigil_time_parse_rfc3339(off, 25, &b);
    if (z[19] != 'Z' && z[19] != 'z') sb = VIGIL_EPARSE;
    int ok = sa == sb && (sa != VIGIL_OK || a == b);
    if (!ok && failures_shown++ < 20)
        printf("\n  seed %llu: \"%s\" %d %lld vs \"%s\" %d %lld\n", (unsigned long long)seed0, z, (int)sa, (long long)a,
               off, (int)sb, (long long)b);
    return ok;
}

static void test_time_fixed_shape(void) {
    int64_t ms;
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2018-04-01T00:00:31Z", 20, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, 1522540831000LL);
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2018-04-01t00:00:31z", 20, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, 1522540831000LL);
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2018-04-01 00:00:31Z", 20, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("1969-12-31T23:59:59Z", 20, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, -1000);
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2016-12-31T23:59:60Z", 20, &ms), VIGIL_OK);   /* leap second */
    static const char *bad[] = {"2018-13-01T00:00:31Z", "2018-00-01T00:00:31Z", "2018-04-00T00:00:31Z",
                                "2018-04-32T00:00:31Z", "2018-04-01T24:00:31Z", "2018-04-01T00:60:31Z",
                                "2018-04-01T00:00:61Z", "2018-04-01X00:00:31Z", "2018-04-01T00:00:31+",
                                "2018-04-01T00:00:31.", "2018/04/01T00:00:31Z", "2O18-04-01T00:00:31Z",
                                "2018-04-01T00:00:3 Z", "-018-04-01T00:00:31Z", "2018-04-01T00.00:31Z"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) CU_ASSERT_EQUAL(vigil_time_parse_rfc3339(bad[i], 20, &ms), VIGIL_EPARSE);
    int nbad = 0;
    /* every byte at every position of a valid time (and of one at the upper bounds) */
    static const char *base[] = {"2018-04-01T00:00:31Z", "9999-12-31T23:59:60z"};
    for (int b = 0; b < 2; b++)
        for (int pos = 0; pos < 20; pos++)
            for (int c = 1; c < 256; c++) {
                char z[24];
                memcpy(z, base[b], 21);
                z[pos] = (char)c;
                nbad += !check_time(z);
            }
    rng = seed0 * 2 + 5;
    static const char seps[] = "-:T tZz.+0/9\xb0\xb9\xff";
    for (int i = 0; i < 100000; i++) {
        char z[24];
        snprintf(z, sizeof z, "%04u-%02u-%02uT%02u:%02u:%02uZ", below(10000), below(4) ? 1 + below(12) : below(100),
                 below(4) ? 1 + below(31) : below(100), below(4) ? below(24) : below(100), below(4) ? below(60) : below(100),
                 below(4) ? below(61) : below(100));
        if (below(2)) z[below(20)] = below(2) ? seps[below(sizeof seps - 1)] : (char)(1 + below(255));   /* any byte */
        if (below(8) == 0) z[10] = below(2) ? 't' : ' ';
        nbad += !check_time(z);
    }
    CU_ASSERT_EQUAL(nbad, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("decode", setup, teardown);
    CU_add_test(s, "CSV numbers: edge cases bit-identical to strtod", test_number_edge_cases);
    CU_add_test(s, "CSV numbers: 150,000 random values bit-identical to strtod", test_number_random);
    CU_add_test(s, "CSV rows: 30,000 random rows split as RFC 4180", test_split_random);
    CU_add_test(s, "CSV rows: quotes, fallback ids, errors", test_rows);
    CU_add_test(s, "RFC 3339 fixed shape equals the general parser", test_time_fixed_shape);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
