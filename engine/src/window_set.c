/* window_set.c — the values of distinct() and is_new(): each kept as a type
 * tag and its text, and the counted hash sets that window.c keeps of them
 * (how many of a window's entries hold each value) once a window is big
 * enough that scanning costs more. Split from window.c, which keeps the
 * ring of entries and the window kinds; the sets know nothing of windows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "window_int.h"

uint32_t vdset_hash(const char *s) { return (uint32_t)vigil_hash(s, strlen(s)); }

/* The slot holding s, or the empty slot where it would go. */
vdslot *vdset_find(const vdset *d, const char *s, uint32_t h) {
    uint32_t m = d->cap - 1;
    for (uint32_t i = h & m;; i = (i + 1) & m) {
        vdslot *x = &d->slot[i];
        if (!x->n || (x->h == h && strcmp(x->s, s) == 0)) return x;
    }
}

void vdset_clear(vdset *d) {
    for (uint32_t i = 0; d->slot && i < d->cap; i++)
        if (d->slot[i].n) free(d->slot[i].s);
    free(d->slot);
    *d = (vdset){0};
}

static int resize(vdset *d, uint32_t cap) {
    vdslot *old = d->slot;
    uint32_t oc = d->cap;
    if (!(d->slot = calloc(cap, sizeof *d->slot))) {
        d->slot = old;
        return -1;
    }
    d->cap = cap;
    for (uint32_t i = 0; i < oc; i++)
        if (old[i].n) *vdset_find(d, old[i].s, old[i].h) = old[i];
    free(old);
    return 0;
}

/* One more entry holds s. -1 when out of memory (the set is then unchanged). */
int vdset_add(vdset *d, const char *s) {
    if ((d->n + 1) * 2 > d->cap && resize(d, d->cap * 2) != 0) return -1;
    uint32_t h = vdset_hash(s);
    vdslot *x = vdset_find(d, s, h);
    if (x->n) {
        x->n++;
        return 0;
    }
    if (!(x->s = strdup(s))) return -1;
    x->h = h;
    x->n = 1;
    d->n++;
    return 0;
}

/* One entry holding s (which the set has) left. A table left mostly empty
 * (the values changed) is halved. */
void vdset_remove(vdset *d, const char *s) {
    uint32_t h = vdset_hash(s), m = d->cap - 1;
    vdslot *x = vdset_find(d, s, h);
    if (!x->n || --x->n) return;
    free(x->s);
    d->n--;
    uint32_t i = (uint32_t)(x - d->slot);   /* the hole: later slots of the probe run move back into it */
    for (uint32_t j = (i + 1) & m; d->slot[j].n; j = (j + 1) & m) {
        uint32_t home = d->slot[j].h & m;
        if (((j - home) & m) >= ((j - i) & m)) {   /* the hole lies on j's probe path */
            d->slot[i] = d->slot[j];
            i = j;
        }
    }
    d->slot[i] = (vdslot){0};
    if (d->cap > 16 && d->n * 8 < d->cap) resize(d, d->cap / 2);   /* out of memory: stays as it is */
}

/* How many entries hold s. */
uint32_t vdset_count(const vdset *d, const char *s) { return vdset_find(d, s, vdset_hash(s))->n; }

/* A value as distinct() and is_new() keep it: its type's tag, then its text
 * ('s' string, 'n' number, 'b' boolean), so that 5 and "5", true and "true"
 * are different values (DESIGN.md §3: no implicit conversion) while 10,
 * 10.0 and 1e1 stay one number. The state record keeps these bytes (v5). */
char *vwin_value_text(const vigil_value *v) {
    char t[64];
    int n;
    if (v->type == VIGIL_T_STR) {
        char *s = malloc((size_t)v->len + 2);
        if (!s) return NULL;
        s[0] = VWIN_TAG_STR;
        memcpy(s + 1, v->u.str, v->len);
        s[v->len + 1] = '\0';
        return s;
    }
    if (v->type == VIGIL_T_NUM) {
        n = vwin_num_text(v->u.num, t + 1, sizeof t - 1);
        t[0] = VWIN_TAG_NUM;
        return strndup(t, (size_t)n + 1);
    }
    if (v->type == VIGIL_T_BOOL) return strdup(v->u.b ? "btrue" : "bfalse");
    return NULL;
}

int vwin_num_text(double d, char *buf, size_t n) {
    if (d == floor(d) && fabs(d) < 9007199254740992.0) return snprintf(buf, n, "%.0f", d);
    return snprintf(buf, n, "%.17g", d);
}

/* A value of a record before v5 (its text only): typed as the text reads —
 * "true"/"false" a boolean, a number's own rendering a number, anything else
 * a string. Those records could not tell 5 from "5"; this keeps a number a
 * number, which is what a numeric field's values were. malloc'd, NULL when
 * out of memory. */
char *vwin_text_untyped(const char *s, size_t len) {
    char tag = VWIN_TAG_STR, t[64];
    if ((len == 4 && memcmp(s, "true", 4) == 0) || (len == 5 && memcmp(s, "false", 5) == 0)) {
        tag = VWIN_TAG_BOOL;
    } else if (len > 0 && len < sizeof t) {
        char *end;
        memcpy(t, s, len);
        t[len] = '\0';
        double d = strtod(t, &end);
        char r[64];
        if (end == t + len && isfinite(d) && (size_t)vwin_num_text(d, r, sizeof r) == len && memcmp(r, s, len) == 0)
            tag = VWIN_TAG_NUM;
    }
    char *out = malloc(len + 2);
    if (!out) return NULL;
    out[0] = tag;
    memcpy(out + 1, s, len);
    out[len + 1] = '\0';
    return out;
}

