/* pairs.c — the names of a (key group, partition) pair in cluster mode;
 * see pairs.h for the rules. Pure string work, no state. */
#include "pairs.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int plain_char(unsigned char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch == '-';
}

/* 1 when s reads as an encoded token: "x" then an even number of lowercase hex digits. */
static int looks_encoded(const char *s, size_t len) {
    if (len == 0 || s[0] != 'x' || (len - 1) % 2 != 0) return 0;
    for (size_t i = 1; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}

static int fail(char *buf, size_t n) {
    if (buf && n > 0) buf[0] = '\0';
    return -1;
}

int vigil_cluster_group_token(const char *group, char *buf, size_t n) {
    if (!group || !buf || n == 0) return fail(buf, n);
    size_t len = strlen(group);
    int plain = len > 0 && !looks_encoded(group, len);
    for (size_t i = 0; plain && i < len; i++)
        if (!plain_char((unsigned char)group[i])) plain = 0;
    if (plain) {
        if (len + 1 > n) return fail(buf, n);
        memcpy(buf, group, len + 1);
        return (int)len;
    }
    if (1 + 2 * len + 1 > n) return fail(buf, n);
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    buf[o++] = 'x';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)group[i];
        buf[o++] = hex[ch >> 4];
        buf[o++] = hex[ch & 15];
    }
    buf[o] = '\0';
    return (int)o;
}

/* snprintf that reports truncation as -1. */
static int fmt(char *buf, size_t n, const char *f, ...) __attribute__((format(printf, 3, 4)));
static int fmt(char *buf, size_t n, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int k = vsnprintf(buf, n, f, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= n) return fail(buf, n);
    return k;
}

int vigil_pair_subject(char *buf, size_t n, const char *subject_prefix, const char *group, int p) {
    char tok[VIGIL_PAIR_NAME_MAX];
    if (!buf || !subject_prefix || !*subject_prefix || p < 0 || vigil_cluster_group_token(group, tok, sizeof tok) < 0)
        return fail(buf, n);
    return fmt(buf, n, "%s.%s.%d", subject_prefix, tok, p);
}

int vigil_pair_consumer(char *buf, size_t n, const char *consumer, const char *group, int p) {
    char tok[VIGIL_PAIR_NAME_MAX];
    if (!buf || !consumer || !*consumer || p < 0 || vigil_cluster_group_token(group, tok, sizeof tok) < 0)
        return fail(buf, n);
    return fmt(buf, n, "%s-%s-p%d", consumer, tok, p);
}

int vigil_pair_lease_key(char *buf, size_t n, const char *group, int p) {
    char tok[VIGIL_PAIR_NAME_MAX];
    if (!buf || p < 0 || vigil_cluster_group_token(group, tok, sizeof tok) < 0) return fail(buf, n);
    return fmt(buf, n, "%s.p%d", tok, p);
}

int vigil_pair_redis_key(char *buf, size_t n, const char *prefix, const char *group, int p, const char *suffix) {
    if (!buf || !prefix || !group || !suffix || p < 0 || strpbrk(group, "{}")) return fail(buf, n);
    return fmt(buf, n, "%s:{%s:p%d}:%s", prefix, group, p, suffix);
}

int vigil_pair_epoch_key(char *buf, size_t n, const char *prefix, const char *group, int p) {
    return vigil_pair_redis_key(buf, n, prefix, group, p, "epoch");
}
