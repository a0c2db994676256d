/* window_ids.c — the ids of a sliding window's newest counted events, an
 * alert's `window_events` (DESIGN.md §3: the events in the window that made
 * `when` hold, capped like `events`). vigil keeps a window's values, not its
 * events, so the ids are kept beside them: at most max_alert_events, oldest
 * first, in arrival order, trimmed as the window lets entries go. Kept in
 * the window header's word (vwin.ids): a single id of at most 7 bytes in
 * the word itself (an idle velocity key's one event costs no allocation),
 * else one block of `u16 length | bytes` records (the oldest leaves in O(1):
 * see vwids). Apart from window.c, which is near its size limit. */
#include <stdlib.h>
#include <string.h>
#include "window_int.h"

/* Drop the oldest id (ids->n > 0): O(1), its bytes stay until compact(). */
static void ids_drop(vwids *ids) {
    uint16_t len;
    memcpy(&len, ids->data + ids->start, sizeof len);
    uint32_t rec = (uint32_t)(sizeof len + len);
    ids->used -= rec;
    ids->n--;
    ids->start = ids->n ? ids->start + rec : 0;
}

/* Move the records to the front of the block (the dead prefix goes). */
static void compact(vwids *ids) {
    if (!ids->start) return;
    memmove(ids->data, ids->data + ids->start, ids->used);
    ids->start = 0;
}

#define IDS_INLINE_MAX 7   /* bytes of an id kept in the pointer's word itself */
/* A new block's bytes of records: with its header one 64-byte malloc chunk,
 * four 7-byte ids (a block sized to its first two ids was realloc'd again
 * at the third). */
#define IDS_FIRST_CAP (64 - 8 - sizeof(vwids))

static int ids_inline(uintptr_t f) { return (f & 1) != 0; }

static uintptr_t ids_make_inline(const char *id, size_t len) {
    unsigned char b[sizeof(uintptr_t)] = {0};
    b[0] = (unsigned char)(len << 1 | 1);
    memcpy(b + 1, id, len);
    uintptr_t f;
    memcpy(&f, b, sizeof f);
    return f;
}

void vwin_ids_view(uintptr_t f, vwids_view *v) {
    v->n = 0;
    v->used = 0;
    v->data = NULL;
    if (!f) return;
    if (ids_inline(f)) {
        unsigned char b[sizeof(uintptr_t)];
        memcpy(b, &f, sizeof b);
        uint16_t l = (uint16_t)(b[0] >> 1);
        memcpy(v->one, &l, sizeof l);
        memcpy(v->one + sizeof l, b + 1, l);
        v->n = 1;
        v->used = sizeof l + l;
        v->data = v->one;
        return;
    }
    const vwids *ids = (const vwids *)f;
    v->n = ids->n;
    v->used = ids->used;
    v->data = ids->data + ids->start;
}

/* Keep at most `keep` ids, the newest (the window holds `keep` counted
 * events: the ids beyond them left with their entries). */
void vw_ids_trim(uintptr_t *fp, uint64_t keep) {
    if (!*fp) return;
    if (ids_inline(*fp)) {
        if (!keep) *fp = 0;
        return;
    }
    vwids *ids = (vwids *)*fp;
    while (ids->n > keep) ids_drop(ids);
    if (!ids->n) {
        free(ids);
        *fp = 0;
    }
}

/* Remember an id (len bytes) as the newest counted event; the oldest goes
 * when `cap` are held. -1: out of memory (nothing changed). */
int vw_ids_push(uintptr_t *fp, uint32_t cap, const char *id, size_t len) {
    if (!cap) return 0;
    if (len > UINT16_MAX) len = UINT16_MAX;   /* a 64 KiB id is cut; window_events only */
    if (!*fp && len <= IDS_INLINE_MAX) {       /* the first one: in the word itself */
        *fp = ids_make_inline(id, len);
        return 0;
    }
    if (ids_inline(*fp) && cap == 1) {
        *fp = 0;                               /* the one held goes for the new one */
        return vw_ids_push(fp, cap, id, len);
    }
    vwids *ids = NULL;
    vwids_view one;
    if (ids_inline(*fp)) vwin_ids_view(*fp, &one);   /* into a block, the held one first */
    else ids = (vwids *)*fp;
    uint16_t l = (uint16_t)len;
    size_t rec = sizeof l + len, more = ids ? 0 : (ids_inline(*fp) ? one.used : 0);
    if (ids && ids->n >= cap) ids_drop(ids);
    if (ids && ids->start + ids->used + rec > ids->cap && ids->start >= ids->cap / 4) compact(ids);
    size_t used = ids ? ids->used : 0;
    if (!ids || ids->start + used + rec > ids->cap) {
        if (ids) compact(ids);   /* growing: the dead prefix goes first (realloc then copies less) */
        size_t nc = ids ? (size_t)ids->cap * 2 : IDS_FIRST_CAP;
        if (nc < used + more + rec) nc = used + more + rec;
        if (nc > UINT32_MAX) return -1;
        vwids *g = realloc(ids, sizeof *g + nc);
        if (!g) return -1;
        if (!ids) {
            g->n = 0, g->pad = 0, g->start = 0, g->used = 0;
            if (more) {
                memcpy(g->data, one.data, one.used);
                g->n = 1;
                g->used = (uint32_t)one.used;
            }
        }
        g->cap = (uint32_t)nc;
        ids = g;
        *fp = (uintptr_t)g;
    }
    unsigned char *end = ids->data + ids->start + ids->used;
    memcpy(end, &l, sizeof l);
    memcpy(end + sizeof l, id, len);
    ids->used += (uint32_t)rec;
    ids->n++;
    return 0;
}

void vwin_ids_free(uintptr_t f) {
    if (f && !ids_inline(f)) free((vwids *)f);
}

vigil_status vwin_ids_add(vwin *w, const vrule *r, uint32_t cap, const char *id, size_t len) {
    uintptr_t *idp = vwin_ids(w, r);
    if (!idp) return VIGIL_OK;
    return vw_ids_push(idp, cap, id, len) == 0 ? VIGIL_OK : VIGIL_ENOMEM;
}

/* How many counted events a sliding window holds: its entries (not those
 * kept only for stragglers), or with buckets the events they count (an
 * upper bound: an event counted by two aggregates counts twice, so no id
 * still in the window is let go). Ids are in arrival order: a straggler's
 * id is the newest even though its entry sits at its time in the ring. */
uint64_t vw_counted_events(const vwin *w, const vrule *r) {
    if (!r->precision_ms) return w->n - w->nkept;
    uint64_t n = 0;
    const uint32_t *c = vwin_cnt(w, r);
    for (int k = 0; k < r->nagg; k++) n += c[k];
    return n;
}

/* The block's oldest record (the next to leave) and its end (where the next
 * id goes); its header was prefetched by vwin_warm, a stage earlier. */
void vwin_warm_ids(const vwin *w, const vrule *r) {
    if (r->window != VIGIL_WIN_SLIDING || !w->ids || (w->ids & 1)) return;
    const vwids *ids = (const vwids *)w->ids;
    __builtin_prefetch(ids->data + ids->start);
    __builtin_prefetch(ids->data + ids->start + ids->used, 1);
}
