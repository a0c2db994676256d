/* outbox_file_index.c — the file outbox's in-memory index (outbox_file_int.h).
 *
 * Why it exists: the log on disk (outbox_file_log.c) is only appended to, so
 * reading, acking and deduplicating need a view of it in memory. Replay on
 * open builds this index and every append and ack keeps it current:
 *   - the alerts in seq order (binary search by seq), each with a bit per
 *     endpoint that acked it; an alert every endpoint acked is "gone": its
 *     JSON is freed and only its id is kept, for deduplication;
 *   - the backlog per endpoint (unacked) and an estimate of what compaction
 *     would keep (live_bytes), which decides when to compact;
 *   - the id set (open addressing, FNV-1a), so that an append of an id the
 *     log still holds does nothing: a replay after a crash regenerates the
 *     same alert ids.
 *
 * Threads: the caller holds fob.mu. */
#include "outbox_file_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- endpoints and positions --------------------------------------------- */

/* Index of the first entry with seq > after. */
size_t vfob_upper_bound(const fob *o, uint64_t after) {
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->v[mid].seq <= after) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

fent *vfob_find_seq(fob *o, uint64_t seq) {
    size_t i = vfob_upper_bound(o, seq);
    if (i == 0 || o->v[i - 1].seq != seq) return NULL;
    return &o->v[i - 1];
}

/* ---- id set (deduplication) --------------------------------------------- */

static size_t id_hash(const char *id) {
    size_t h = 1469598103934665603ull;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

idslot *vfob_id_find(const fob *o, const char *id) {
    if (!o->idcap) return NULL;
    size_t m = o->idcap - 1;
    for (size_t i = id_hash(id) & m;; i = (i + 1) & m) {
        if (!o->ids[i].id[0]) return NULL;
        if (!strcmp(o->ids[i].id, id)) return &o->ids[i];
    }
}

static int id_insert(fob *o, const char *id, uint64_t seq);

static int id_grow(fob *o, size_t want) {
    size_t cap = o->idcap ? o->idcap : 1024;
    while (cap < want * 2) cap *= 2;
    if (cap == o->idcap) return 0;
    idslot *old = o->ids;
    size_t oldcap = o->idcap;
    o->ids = calloc(cap, sizeof *o->ids);
    if (!o->ids) {
        o->ids = old;
        return -1;
    }
    o->idcap = cap;
    o->idcount = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].id[0]) id_insert(o, old[i].id, old[i].seq);
    free(old);
    return 0;
}

static int id_insert(fob *o, const char *id, uint64_t seq) {
    if ((o->idcount + 1) * 2 > o->idcap && id_grow(o, o->idcount + 1) != 0) return -1;
    size_t m = o->idcap - 1;
    for (size_t i = id_hash(id) & m;; i = (i + 1) & m) {
        if (!o->ids[i].id[0]) {
            memcpy(o->ids[i].id, id, strlen(id) + 1);
            o->ids[i].seq = seq;
            o->idcount++;
            return 0;
        }
        if (!strcmp(o->ids[i].id, id)) return 0;
    }
}

/* Rebuild the id set from v (after compaction). */
int vfob_id_rebuild(fob *o) {
    free(o->ids);
    o->ids = NULL;
    o->idcap = o->idcount = 0;
    if (id_grow(o, o->n + 1) != 0) return -1;
    for (size_t i = 0; i < o->n; i++)
        if (id_insert(o, o->v[i].id, o->v[i].seq) != 0) return -1;
    return 0;
}

/* ---- entries ------------------------------------------------------------- */

static int v_reserve(fob *o, size_t more) {
    if (o->n + more <= o->cap) return 0;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->n + more) cap *= 2;
    fent *nv = realloc(o->v, cap * sizeof *nv);
    if (!nv) return -1;
    o->v = nv;
    o->cap = cap;
    return 0;
}

/* The entry became acked by every endpoint: keep only its id. */
static void make_gone(fob *o, fent *e) {
    if (e->gone) return;
    e->gone = 1;
    free(e->blob);
    e->blob = NULL;
    o->live_bytes -= e->rec_bytes < o->live_bytes ? e->rec_bytes : o->live_bytes;
    o->live_bytes += GONE_BYTES;
}

/* Add a replayed or appended alert (blob ownership moves in). */
int vfob_add_entry(fob *o, uint64_t seq, int64_t ms, int shadow, const char *id, char *blob,
                   size_t json_len, size_t rec_bytes) {
    if (v_reserve(o, 1) != 0 || id_insert(o, id, seq) != 0) return -1;
    fent *e = &o->v[o->n++];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->appended_ms = ms;
    e->shadow = (unsigned char)shadow;
    memcpy(e->id, id, strlen(id) + 1);
    e->blob = blob;
    e->json_len = json_len;
    e->rec_bytes = rec_bytes;
    if (seq > o->last_seq) o->last_seq = seq;
    o->live_bytes += rec_bytes;
    for (int i = 0; i < o->neps; i++) o->unacked[i]++;
    if (fully_acked(o, e)) make_gone(o, e);
    return 0;
}

/* Endpoint i acked entry e; 1 when that is news. */
int vfob_set_acked(fob *o, fent *e, int i) {
    uint64_t bit = 1ull << i;
    if (e->gone || (e->acked & bit)) return 0;
    e->acked |= bit;
    if (o->unacked[i]) o->unacked[i]--;
    if (fully_acked(o, e)) make_gone(o, e);
    return 1;
}

char *vfob_make_blob(const char *rule, size_t rl, const char *sev, size_t sl, const char *key,
                     size_t kl, const char *json, size_t jl) {
    char *b = malloc(rl + sl + kl + jl + 4);
    if (!b) return NULL;
    char *p = b;
    memcpy(p, rule, rl); p += rl; *p++ = '\0';
    memcpy(p, sev, sl); p += sl; *p++ = '\0';
    memcpy(p, key, kl); p += kl; *p++ = '\0';
    memcpy(p, json, jl); p += jl; *p = '\0';
    return b;
}

