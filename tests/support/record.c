/* record.c — see record.h: a v6 key-state record as v5 (its window-id
 * entries, kind 3, dropped), a v5 one as v4, a v4 one in the v3 layout. */
#include <stdint.h>
#include <string.h>
#include "record.h"

typedef struct cur { const unsigned char *p; size_t len, off; unsigned char *o; size_t cap, olen; int bad; } cur;

static void copy(cur *c, size_t n, int keep) {
    if (c->bad || c->len - c->off < n || (keep && c->cap - c->olen < n)) {
        c->bad = 1;
        return;
    }
    if (keep) memcpy(c->o + c->olen, c->p + c->off, n), c->olen += n;
    c->off += n;
}

static uint32_t u32_at(cur *c) {
    uint32_t v = 0;
    if (c->len - c->off >= 4) memcpy(&v, c->p + c->off, 4);
    else c->bad = 1;
    return v;
}

static void str(cur *c) {
    uint32_t l = u32_at(c);
    copy(c, 4, 1);
    copy(c, l, 1);
}

size_t test_record_v4_to_v3(const unsigned char *in, size_t len, unsigned char *out, size_t cap) {
    cur c = {.p = in, .len = len, .o = out, .cap = cap};
    if (len < 4 || memcmp(in, "VGS\4", 4) != 0) return 0;
    copy(&c, 4, 1);
    out[3] = 3;
    copy(&c, 8 + 8, 1);                 /* seq, last_ts */
    uint32_t nev = u32_at(&c);
    copy(&c, 4, 1);
    for (uint32_t i = 0; i < nev && !c.bad; i++) {
        str(&c);                         /* id */
        copy(&c, 8, 1);                  /* ts */
        str(&c);                         /* json */
    }
    uint32_t nr = u32_at(&c);
    copy(&c, 4, 1);
    for (uint32_t i = 0; i < nr && !c.bad; i++) {
        str(&c);                         /* name */
        copy(&c, 4 + 1, 1);              /* version, kind */
        uint32_t blen = u32_at(&c);
        copy(&c, 4, 0);                  /* the v4 length: dropped */
        copy(&c, blen, 1);
    }
    return c.bad || c.off != len ? 0 : c.olen;
}

size_t test_record_v5_to_v4(const unsigned char *in, size_t len, unsigned char *out, size_t cap) {
    cur c = {.p = in, .len = len, .o = out, .cap = cap};
    if (len < 4 || memcmp(in, "VGS", 3) != 0 || (in[3] != 5 && in[3] != 6)) return 0;   /* v6: its kind 3 entries go */
    copy(&c, 4, 1);
    out[3] = 4;
    copy(&c, 8 + 8, 1);                 /* seq, last_ts */
    uint32_t nev = u32_at(&c);
    copy(&c, 4, 1);
    for (uint32_t i = 0; i < nev && !c.bad; i++) {
        str(&c);                         /* id */
        copy(&c, 8, 1);                  /* ts */
        str(&c);                         /* json */
    }
    uint32_t nr = u32_at(&c), kept = 0;
    size_t nr_at = c.olen;
    copy(&c, 4, 1);
    for (uint32_t i = 0; i < nr && !c.bad; i++) {
        size_t mark = c.olen;
        str(&c);                         /* name */
        copy(&c, 4, 1);                  /* version */
        uint8_t kind = c.off < len ? in[c.off] : 0;
        copy(&c, 1, 1);
        uint32_t blen = u32_at(&c);
        if (kind == 3) {                 /* v6's window ids: not in v4 */
            copy(&c, 4 + blen, 0);
            c.olen = mark;
            continue;
        }
        kept++;
        if (kind != 2) {
            copy(&c, 4 + blen, 1);
            continue;
        }
        uint32_t nret = 0;               /* a window entry ends with u32 nretained (v5): 0 goes */
        if (blen < 4 || c.off + 4 + blen > len) return 0;
        memcpy(&nret, in + c.off + 4 + blen - 4, 4);
        if (nret) return 0;
        uint32_t l4 = blen - 4;
        if (c.cap - c.olen < 4) return 0;
        memcpy(out + c.olen, &l4, 4);
        c.olen += 4;
        copy(&c, 4, 0);
        copy(&c, l4, 1);
        copy(&c, 4, 0);
    }
    if (!c.bad) memcpy(out + nr_at, &kept, 4);
    return c.bad || c.off != len ? 0 : c.olen;
}

size_t test_record_v6_to_v5(const unsigned char *in, size_t len, unsigned char *out, size_t cap) {
    cur c = {.p = in, .len = len, .o = out, .cap = cap};
    if (len < 4 || memcmp(in, "VGS\6", 4) != 0) return 0;
    copy(&c, 4, 1);
    out[3] = 5;
    copy(&c, 8 + 8, 1);                 /* seq, last_ts */
    uint32_t nev = u32_at(&c);
    copy(&c, 4, 1);
    for (uint32_t i = 0; i < nev && !c.bad; i++) {
        str(&c);                         /* id */
        copy(&c, 8, 1);                  /* ts */
        str(&c);                         /* json */
    }
    uint32_t nr = u32_at(&c), kept = 0;
    size_t nr_at = c.olen;
    copy(&c, 4, 1);
    for (uint32_t i = 0; i < nr && !c.bad; i++) {
        size_t mark = c.olen;
        str(&c);                         /* name */
        copy(&c, 4, 1);                  /* version */
        int ids = c.off < len && in[c.off] == 3;
        copy(&c, 1, 1);                  /* kind */
        uint32_t blen = u32_at(&c);
        copy(&c, 4 + blen, 1);           /* length and body */
        if (ids) c.olen = mark;          /* v6's window ids: not in v5 */
        else kept++;
    }
    if (!c.bad) memcpy(out + nr_at, &kept, 4);
    return c.bad || c.off != len ? 0 : c.olen;
}
