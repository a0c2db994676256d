/* pairs.c — the pair names of cluster mode (pairs.h). */
#include "pairs.h"

#include <string.h>

static int plain(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int vigil_cluster_group_token(const char *group, char *buf, size_t n) {
    if (!group || !buf) return -1;
    size_t len = strlen(group);
    int ok = len > 0;
    for (size_t i = 0; i < len && ok; i++) ok = plain((unsigned char)group[i]);
    size_t need = ok ? len : 1 + 2 * len;
    if (need + 1 > n) {
        if (n) buf[0] = '\0';
        return -1;
    }
    if (ok) {
        memcpy(buf, group, len + 1);
        return (int)len;
    }
    static const char hex[] = "0123456789abcdef";
    buf[0] = 'x';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)group[i];
        buf[1 + 2 * i] = hex[c >> 4];
        buf[2 + 2 * i] = hex[c & 15];
    }
    buf[need] = '\0';
    return (int)need;
}
