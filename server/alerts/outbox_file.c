/* outbox_file.c — the alert outbox in a file, for the memory store (outbox.h).
 *
 * Why it exists: with the memory store there is no Redis stream to keep
 * alerts until every webhook endpoint has them (DESIGN.md §8, issue 4
 * "nothing lost, nothing twice"). Workers append the alerts of a commit with
 * vigil_outbox_file_append; dispatchers read, ack and dead-letter through the
 * vigil_outbox interface; everything survives a crash because it is one
 * append-only log, <dir>/outbox.log, replayed on open:
 *
 *   "VIGILOB1", then records [u32 len][u32 crc32(type,payload)][u8 type][payload]
 *     'A' alert   u64 seq, i64 appended_ms, u8 shadow, str id, rule, severity, key, json
 *     'K' acks    str endpoint, u32 n, u64 seq × n
 *     'D' dedup   u64 seq, str id        (acked by all; kept so a replay is not re-sent)
 *     'M' meta    u64 last_seq, u64 forget_upto
 *   (integers little-endian, str = u32 length + bytes)
 *
 * One append = one write(2) of all its records (then fdatasync when asked),
 * truncated back on failure, so appends are all or nothing. A crash can only
 * tear the tail: on open the first short record or checksum mismatch ends the
 * replay and the file is truncated there (reported on stderr). Acks are not
 * fsynced: a lost ack means a re-delivery (at-least-once), never a loss.
 *
 * Compaction rewrites the log to outbox.log.tmp (fsync, rename, fsync of the
 * directory) with only what is still needed: alerts some endpoint has not
 * acked (with the acks they have), and the ids of acked alerts appended after
 * the forget-up-to mark (mark_snapshot), which deduplication still needs.
 *
 * Dead letters are JSON lines in <dir>/deadletter.jsonl, written (and
 * fsynced when asked) before the ack that removes the alert from the log.
 *
 * Threads: one mutex guards everything; read() waits on a condition
 * variable (CLOCK_MONOTONIC) that append broadcasts. */
#define _GNU_SOURCE
#include "vigil/clock.h"
#include "vigil/event.h"
#include "outbox.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define FOB_MAGIC 0x46424f58u        /* "XOBF" */
#define HDR "VIGILOB1"
#define HDR_LEN 8
#define REC_HDR 9                    /* u32 len, u32 crc, u8 type */
#define MAX_PAYLOAD (64u << 20)      /* a record over this is corruption */
#define MAX_ENDPOINTS 64             /* acks are a 64-bit mask per alert */
#define MAX_EP_NAME 64
#define ID_MAX 32
#define COMPACT_MIN_BYTES (1u << 20)
#define DEAD_READ_MAX (64u << 20)    /* list_dead reads at most this tail */
#define DEAD_LIMIT_DEFAULT 100
#define DEAD_LIMIT_MAX 10000
#define ACKS_PER_RECORD 65536
#define GONE_BYTES 64                /* estimated size of a 'D' record */

/* One alert in the log. blob holds "rule\0severity\0key\0" + json + "\0";
 * it is freed once every endpoint acked the alert (gone). */
typedef struct fent {
    uint64_t seq;
    int64_t appended_ms;
    uint64_t acked;          /* bit i: endpoint i acked it */
    char id[ID_MAX + 1];
    unsigned char shadow;
    unsigned char gone;      /* acked by every endpoint: only the id is kept */
    char *blob;
    size_t json_len;
    size_t rec_bytes;        /* size of its 'A' record */
} fent;

typedef struct idslot {
    char id[ID_MAX + 1];     /* "" = empty */
    uint64_t seq;
} idslot;

typedef struct fob {
    vigil_outbox base;       /* first: a vigil_outbox* is a fob* */
    uint32_t magic;
    char *dir, *path, *tmp_path, *dead_path;
    int fd, dead_fd;
    int do_fsync;
    uint64_t file_size;

    char *names[MAX_ENDPOINTS];
    int neps;
    uint64_t allmask;

    pthread_mutex_t mu;
    pthread_cond_t appended;

    fent *v;                 /* in seq order */
    size_t n, cap;
    idslot *ids;             /* open addressing over every alert in v */
    size_t idcap, idcount;
    uint64_t last_seq;
    uint64_t forget_upto;    /* ids at or below may be forgotten once acked */
    uint64_t mark_prev;      /* last_seq at the previous mark_snapshot */
    uint64_t unacked[MAX_ENDPOINTS];
    size_t hint[MAX_ENDPOINTS];  /* index below which ep acked everything */
    uint64_t live_bytes;     /* what compaction would keep, estimated */
    uint64_t compact_retry_size; /* after a failed compaction: wait for this size */
} fob;

/* ---- small helpers ------------------------------------------------------- */

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int full_write(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int valid_id(const char *id) {
    size_t n = id ? strnlen(id, ID_MAX + 1) : 0;
    if (n == 0 || n > ID_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f) return 0;
    return 1;
}

static int fully_acked(const fob *o, const fent *e) {
    return e->gone || (e->acked & o->allmask) == o->allmask;
}

static const char *blob_rule(const fent *e) { return e->blob; }
static const char *blob_sev(const fent *e) { return e->blob + strlen(e->blob) + 1; }
static const char *blob_key(const fent *e) {
    const char *s = blob_sev(e);
    return s + strlen(s) + 1;
}
static const char *blob_json(const fent *e) {
    const char *k = blob_key(e);
    return k + strlen(k) + 1;
}

static int ep_index(const fob *o, const char *ep) {
    for (int i = 0; ep && i < o->neps; i++)
        if (!strcmp(o->names[i], ep)) return i;
    return -1;
}

/* Strict decimal ("" = 0). -1 when malformed. */
static int parse_seq(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!s || !*s) {
        *out = 0;
        return 0;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

/* Index of the first entry with seq > after. */
static size_t upper_bound(const fob *o, uint64_t after) {
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->v[mid].seq <= after) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static fent *find_seq(fob *o, uint64_t seq) {
    size_t i = upper_bound(o, seq);
    if (i == 0 || o->v[i - 1].seq != seq) return NULL;
    return &o->v[i - 1];
}

/* ---- id set (deduplication) --------------------------------------------- */

static size_t id_hash(const char *id) {
    size_t h = 1469598103934665603ull;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return h;
}

static idslot *id_find(const fob *o, const char *id) {
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
static int id_rebuild(fob *o) {
    free(o->ids);
    o->ids = NULL;
    o->idcap = o->idcount = 0;
    if (id_grow(o, o->n + 1) != 0) return -1;
    for (size_t i = 0; i < o->n; i++)
        if (id_insert(o, o->v[i].id, o->v[i].seq) != 0) return -1;
    return 0;
}

/* ---- record encoding ----------------------------------------------------- */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} buf;

static void b_reserve(buf *b, size_t more) {
    if (b->oom || b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    unsigned char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void b_put(buf *b, const void *d, size_t n) {
    b_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void b_u8(buf *b, unsigned v) {
    unsigned char c = (unsigned char)v;
    b_put(b, &c, 1);
}

static void b_u32(buf *b, uint32_t v) {
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    b_put(b, c, 4);
}

static void b_u64(buf *b, uint64_t v) {
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}

static void b_str(buf *b, const char *s, size_t n) {
    b_u32(b, (uint32_t)n);
    b_put(b, s, n);
}

/* Start a record: returns the offset of its header, patched by rec_end. */
static size_t rec_begin(buf *b, char type) {
    size_t at = b->len;
    b_u32(b, 0);
    b_u32(b, 0);
    b_u8(b, (unsigned char)type);
    return at;
}

static void put_u32_at(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void rec_end(buf *b, size_t at) {
    if (b->oom) return;
    size_t plen = b->len - at - REC_HDR;
    uLong crc = crc32(0L, b->p + at + 8, (uInt)(plen + 1));   /* type + payload */
    put_u32_at(b->p + at, (uint32_t)plen);
    put_u32_at(b->p + at + 4, (uint32_t)crc);
}

static void rec_alert(buf *b, uint64_t seq, int64_t ms, int shadow, const char *id,
                      const char *rule, const char *sev, const char *key, const char *json,
                      size_t len) {
    size_t at = rec_begin(b, 'A');
    b_u64(b, seq);
    b_u64(b, (uint64_t)ms);
    b_u8(b, shadow ? 1 : 0);
    b_str(b, id, strlen(id));
    b_str(b, rule, strlen(rule));
    b_str(b, sev, strlen(sev));
    b_str(b, key, strlen(key));
    b_str(b, json, len);
    rec_end(b, at);
}

static size_t alert_rec_bytes(const char *id, const char *rule, const char *sev, const char *key,
                              size_t len) {
    return REC_HDR + 8 + 8 + 1 + 5 * 4 + strlen(id) + strlen(rule) + strlen(sev) + strlen(key) + len;
}

static void rec_meta(buf *b, uint64_t last_seq, uint64_t forget_upto) {
    size_t at = rec_begin(b, 'M');
    b_u64(b, last_seq);
    b_u64(b, forget_upto);
    rec_end(b, at);
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct rd {
    const unsigned char *p;
    size_t len, off;
    int bad;
} rd;

static uint32_t r_u32(rd *r) {
    if (r->bad || r->len - r->off < 4) {
        r->bad = 1;
        return 0;
    }
    const unsigned char *p = r->p + r->off;
    r->off += 4;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t r_u64(rd *r) {
    uint64_t lo = r_u32(r);
    return lo | (uint64_t)r_u32(r) << 32;
}

static unsigned r_u8(rd *r) {
    if (r->bad || r->len - r->off < 1) {
        r->bad = 1;
        return 0;
    }
    return r->p[r->off++];
}

/* A string: pointer into the record and its length. */
static const char *r_str(rd *r, size_t *n) {
    uint32_t l = r_u32(r);
    if (r->bad || r->len - r->off < l) {
        r->bad = 1;
        *n = 0;
        return NULL;
    }
    const char *s = (const char *)r->p + r->off;
    r->off += l;
    *n = l;
    return s;
}

/* ---- memory side --------------------------------------------------------- */

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
static int add_entry(fob *o, uint64_t seq, int64_t ms, int shadow, const char *id, char *blob,
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
static int set_acked(fob *o, fent *e, int i) {
    uint64_t bit = 1ull << i;
    if (e->gone || (e->acked & bit)) return 0;
    e->acked |= bit;
    if (o->unacked[i]) o->unacked[i]--;
    if (fully_acked(o, e)) make_gone(o, e);
    return 1;
}

static char *make_blob(const char *rule, size_t rl, const char *sev, size_t sl, const char *key,
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

/* ---- replay -------------------------------------------------------------- */

/* Seq of the newest alert in memory (records must increase). */
static uint64_t tail_seq(const fob *o) { return o->n ? o->v[o->n - 1].seq : 0; }

/* Apply one record; -1 when its payload is malformed (treated as torn). */
static int apply_record(fob *o, char type, const unsigned char *p, size_t len) {
    rd r = {p, len, 0, 0};
    switch (type) {
    case 'A': {
        size_t il, rl, sl, kl, jl;
        uint64_t seq = r_u64(&r);
        int64_t ms = (int64_t)r_u64(&r);
        unsigned shadow = r_u8(&r);
        const char *id = r_str(&r, &il);
        const char *rule = r_str(&r, &rl);
        const char *sev = r_str(&r, &sl);
        const char *key = r_str(&r, &kl);
        const char *json = r_str(&r, &jl);
        if (r.bad || il == 0 || il > ID_MAX || seq <= tail_seq(o)) return -1;
        char idb[ID_MAX + 1];
        memcpy(idb, id, il);
        idb[il] = '\0';
        if (id_find(o, idb)) return 0;      /* cannot happen: appends deduplicate */
        char *blob = make_blob(rule, rl, sev, sl, key, kl, json, jl);
        if (!blob) return -2;
        if (add_entry(o, seq, ms, (int)shadow, idb, blob, jl, REC_HDR + len) != 0) {
            free(blob);
            return -2;
        }
        return 0;
    }
    case 'D': {
        size_t il;
        uint64_t seq = r_u64(&r);
        const char *id = r_str(&r, &il);
        if (r.bad || il == 0 || il > ID_MAX || seq <= tail_seq(o)) return -1;
        char idb[ID_MAX + 1];
        memcpy(idb, id, il);
        idb[il] = '\0';
        if (add_entry(o, seq, 0, 0, idb, NULL, 0, GONE_BYTES) != 0) return -2;
        fent *e = &o->v[o->n - 1];
        if (!e->gone) {
            for (int k = 0; k < o->neps; k++)
                if (o->unacked[k]) o->unacked[k]--;
            e->gone = 1;
        }
        return 0;
    }
    case 'K': {
        size_t nl;
        const char *name = r_str(&r, &nl);
        uint32_t cnt = r_u32(&r);
        if (r.bad || (uint64_t)cnt * 8 != len - r.off) return -1;
        char nb[MAX_EP_NAME + 1];
        if (nl > MAX_EP_NAME) return 0;     /* not one of ours */
        memcpy(nb, name, nl);
        nb[nl] = '\0';
        int i = ep_index(o, nb);
        for (uint32_t k = 0; k < cnt; k++) {
            uint64_t seq = r_u64(&r);
            fent *e = i >= 0 ? find_seq(o, seq) : NULL;
            if (e) set_acked(o, e, i);
        }
        return 0;
    }
    case 'M': {
        uint64_t last = r_u64(&r), fu = r_u64(&r);
        if (r.bad) return -1;
        if (last > o->last_seq) o->last_seq = last;
        if (fu > o->forget_upto) o->forget_upto = fu;
        return 0;
    }
    default:
        return -1;
    }
}

/* Read the whole log, apply its records, truncate a torn tail. */
static vigil_status replay(fob *o, vigil_error *err) {
    struct stat st;
    if (fstat(o->fd, &st) != 0)
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
    size_t size = (size_t)st.st_size;
    if (size < HDR_LEN) {
        /* new, or torn before its header was complete: start afresh */
        if (size > 0) fprintf(stderr, "vigil: outbox %s: torn header of %zu bytes ignored\n", o->path, size);
        if (ftruncate(o->fd, 0) != 0 || lseek(o->fd, 0, SEEK_SET) < 0 ||
            full_write(o->fd, HDR, HDR_LEN) != 0 || fsync(o->fd) != 0)
            return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
        fsync_dir(o->dir);
        o->file_size = HDR_LEN;
        return VIGIL_OK;
    }
    unsigned char *data = malloc(size);
    if (!data) return vigil_error_set(err, VIGIL_ENOMEM, "outbox %s: out of memory (%zu bytes)", o->path, size);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(o->fd, data + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got != size) {
        free(data);
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: short read", o->path);
    }
    if (memcmp(data, HDR, HDR_LEN) != 0) {
        free(data);
        return vigil_error_set(err, VIGIL_EPARSE, "outbox %s: not an outbox log (bad header)", o->path);
    }
    size_t off = HDR_LEN;
    const char *why = NULL;
    while (off < size) {
        if (size - off < REC_HDR) { why = "short record header"; break; }
        const unsigned char *h = data + off;
        uint32_t len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        uint32_t crc = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
        if (len > MAX_PAYLOAD) { why = "impossible record length"; break; }
        if (size - off - REC_HDR < len) { why = "short record"; break; }
        if ((uint32_t)crc32(0L, h + 8, (uInt)len + 1) != crc) { why = "checksum mismatch"; break; }
        int rc = apply_record(o, (char)h[8], h + REC_HDR, len);
        if (rc == -2) {
            free(data);
            return vigil_error_set(err, VIGIL_ENOMEM, "outbox %s: out of memory", o->path);
        }
        if (rc != 0) { why = "malformed record"; break; }
        off += REC_HDR + len;
    }
    free(data);
    if (why) {
        fprintf(stderr, "vigil: outbox %s: torn tail ignored (%s at byte %zu, %zu bytes dropped)\n",
                o->path, why, off, size - off);
        if (ftruncate(o->fd, (off_t)off) != 0 || fsync(o->fd) != 0)
            return vigil_error_set(err, VIGIL_EIO, "outbox %s: cannot truncate the torn tail: %s",
                                   o->path, strerror(errno));
    }
    o->file_size = off;
    /* mark_prev stays 0: what the log holds is not known to be covered by a
     * snapshot until this process has called mark_snapshot twice (the
     * forget-up-to mark persisted in the log still applies). */
    return VIGIL_OK;
}

/* ---- compaction ---------------------------------------------------------- */

static vigil_status compact_locked(fob *o, vigil_error *err) {
    buf b = {0};
    int fd = -1;
    vigil_status s = VIGIL_OK;
    uint64_t new_size = 0;

    b_put(&b, HDR, HDR_LEN);
    rec_meta(&b, o->last_seq, o->forget_upto);
    fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->tmp_path, strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < o->n; i++) {
        fent *e = &o->v[i];
        if (fully_acked(o, e)) {
            if (e->seq <= o->forget_upto) continue;
            size_t at = rec_begin(&b, 'D');
            b_u64(&b, e->seq);
            b_str(&b, e->id, strlen(e->id));
            rec_end(&b, at);
        } else {
            rec_alert(&b, e->seq, e->appended_ms, e->shadow, e->id, blob_rule(e), blob_sev(e),
                      blob_key(e), blob_json(e), e->json_len);
        }
        if (b.len >= (1u << 20)) {
            if (b.oom || full_write(fd, b.p, b.len) != 0) goto io;
            new_size += b.len;
            b.len = 0;
        }
    }
    for (int k = 0; k < o->neps; k++) {
        uint64_t bit = 1ull << k;
        size_t at = 0, cnt = 0, cnt_at = 0;
        for (size_t i = 0; i <= o->n; i++) {
            int last = i == o->n;
            fent *e = last ? NULL : &o->v[i];
            int take = e && !fully_acked(o, e) && (e->acked & bit);
            if (take) {
                if (cnt == 0) {
                    at = rec_begin(&b, 'K');
                    b_str(&b, o->names[k], strlen(o->names[k]));
                    cnt_at = b.len;
                    b_u32(&b, 0);
                }
                b_u64(&b, e->seq);
                cnt++;
            }
            if (cnt && (last || cnt == ACKS_PER_RECORD)) {
                if (!b.oom) put_u32_at(b.p + cnt_at, (uint32_t)cnt);
                rec_end(&b, at);
                cnt = 0;
            }
        }
    }
    if (b.oom || full_write(fd, b.p, b.len) != 0) goto io;
    new_size += b.len;
    if (fsync(fd) != 0) goto io;
    close(fd);
    fd = -1;
    if (rename(o->tmp_path, o->path) != 0) goto io;
    fsync_dir(o->dir);
    {
        int nfd = open(o->path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (nfd < 0) {
            /* The new log is in place but cannot be appended to: the process
             * keeps its old descriptor, now pointing at an unlinked file. */
            s = vigil_error_set(err, VIGIL_EIO, "outbox %s: reopen after compaction: %s", o->path,
                                strerror(errno));
            goto out;
        }
        close(o->fd);
        o->fd = nfd;
    }
    o->file_size = new_size;
    /* Memory follows the file: drop what was not written. */
    {
        size_t j = 0;
        o->live_bytes = 0;
        for (size_t i = 0; i < o->n; i++) {
            fent *e = &o->v[i];
            if (fully_acked(o, e) && e->seq <= o->forget_upto) {
                free(e->blob);
                continue;
            }
            o->live_bytes += fully_acked(o, e) ? GONE_BYTES : e->rec_bytes;
            o->v[j++] = *e;
        }
        o->n = j;
        for (int k = 0; k < o->neps; k++) o->hint[k] = 0;
        if (id_rebuild(o) != 0)
            s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory rebuilding the id set");
    }
    goto out;
io:
    s = vigil_error_set(err, VIGIL_EIO, "outbox %s: compaction failed: %s", o->tmp_path,
                        b.oom ? "out of memory" : strerror(errno));
    if (fd >= 0) close(fd);
    fd = -1;
    unlink(o->tmp_path);
out:
    if (fd >= 0) close(fd);
    free(b.p);
    return s;
}

static void maybe_compact(fob *o) {
    if (o->file_size < COMPACT_MIN_BYTES || o->live_bytes * 2 >= o->file_size ||
        o->file_size < o->compact_retry_size)
        return;
    vigil_error err;
    vigil_error_clear(&err);
    if (compact_locked(o, &err) != VIGIL_OK) {
        /* e.g. disk full: not again at every ack, only once the log grew a quarter */
        o->compact_retry_size = o->file_size + o->file_size / 4;
        fprintf(stderr, "vigil: %s\n", err.msg);
    } else {
        o->compact_retry_size = 0;
    }
}

vigil_status vigil_outbox_file_compact(vigil_outbox *ob, vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o || o->magic != FOB_MAGIC) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a file outbox");
    pthread_mutex_lock(&o->mu);
    vigil_status s = compact_locked(o, err);
    pthread_mutex_unlock(&o->mu);
    return s;
}

/* ---- interface ----------------------------------------------------------- */

static vigil_status f_read(vigil_outbox *ob, const char *ep, const char *after,
                           vigil_alert_record *out, int max, int *n, int wait_ms, vigil_error *err) {
    fob *o = (fob *)ob;
    uint64_t from;
    if (n) *n = 0;
    if (!o || !out || !n || max <= 0) return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad argument");
    if (parse_seq(after, &from) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox read: bad position '%s'", after);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (wait_ms > 0) {
        deadline.tv_sec += wait_ms / 1000;
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i < 0) {
        pthread_mutex_unlock(&o->mu);
        return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
    }
    uint64_t bit = 1ull << i;
    vigil_status s = VIGIL_OK;
    int got = 0;
    for (;;) {
        /* Everything below hint[i] is acked by i: skip it cheaply. */
        while (o->hint[i] < o->n && (o->v[o->hint[i]].gone || (o->v[o->hint[i]].acked & bit)))
            o->hint[i]++;
        size_t k = upper_bound(o, from);
        if (k < o->hint[i]) k = o->hint[i];
        for (; k < o->n && got < max; k++) {
            fent *e = &o->v[k];
            if (e->gone || (e->acked & bit)) continue;
            vigil_alert_record *x = &out[got];
            memset(x, 0, sizeof *x);
            x->json = malloc(e->json_len + 1);
            if (!x->json) {
                s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
                break;
            }
            memcpy(x->json, blob_json(e), e->json_len + 1);
            x->len = e->json_len;
            snprintf(x->ref, sizeof x->ref, "%llu", (unsigned long long)e->seq);
            snprintf(x->id, sizeof x->id, "%s", e->id);
            snprintf(x->rule, sizeof x->rule, "%s", blob_rule(e));
            snprintf(x->severity, sizeof x->severity, "%s", blob_sev(e));
            snprintf(x->key, sizeof x->key, "%s", blob_key(e));
            x->mode = e->shadow ? VIGIL_MODE_SHADOW : VIGIL_MODE_ACTIVE;
            x->appended_ms = e->appended_ms;
            got++;
        }
        if (got || s != VIGIL_OK || wait_ms <= 0) break;
        if (pthread_cond_timedwait(&o->appended, &o->mu, &deadline) == ETIMEDOUT) wait_ms = 0;
    }
    pthread_mutex_unlock(&o->mu);
    if (s != VIGIL_OK) {
        for (int k = 0; k < got; k++) vigil_alert_record_free(&out[k]);
        got = 0;
    }
    *n = got;
    return s;
}

/* Write one 'K' record for endpoint i and mark the entries. Locked. */
static vigil_status ack_locked(fob *o, int i, const uint64_t *seqs, int n, vigil_error *err) {
    buf b = {0};
    uint64_t bit = 1ull << i;
    int cnt = 0;
    size_t at = rec_begin(&b, 'K');
    b_str(&b, o->names[i], strlen(o->names[i]));
    size_t cnt_at = b.len;
    b_u32(&b, 0);
    for (int k = 0; k < n; k++) {
        fent *e = find_seq(o, seqs[k]);
        if (!e || e->gone || (e->acked & bit)) continue;   /* idempotent */
        b_u64(&b, seqs[k]);
        cnt++;
    }
    if (cnt == 0) {
        free(b.p);
        return VIGIL_OK;
    }
    if (!b.oom) put_u32_at(b.p + cnt_at, (uint32_t)cnt);
    rec_end(&b, at);
    if (b.oom) {
        free(b.p);
        return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    }
    if (full_write(o->fd, b.p, b.len) != 0) {
        int e = errno;
        if (ftruncate(o->fd, (off_t)o->file_size) != 0) { /* best effort */ }
        free(b.p);
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(e));
    }
    o->file_size += b.len;
    free(b.p);
    for (int k = 0; k < n; k++) {
        fent *e = find_seq(o, seqs[k]);
        if (e) set_acked(o, e, i);
    }
    maybe_compact(o);
    return VIGIL_OK;
}

static vigil_status f_ack(vigil_outbox *ob, const char *ep, const char *const *refs, int n,
                          vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o || n < 0 || (n > 0 && !refs)) return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad argument");
    if (n == 0) return VIGIL_OK;
    uint64_t *seqs = malloc((size_t)n * sizeof *seqs);
    if (!seqs) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    for (int k = 0; k < n; k++)
        if (!refs[k] || !*refs[k] || parse_seq(refs[k], &seqs[k]) != 0) {
            free(seqs);
            return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad position '%s'",
                                   refs[k] ? refs[k] : "(null)");
        }
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    vigil_status s = i < 0 ? vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'",
                                             ep ? ep : "(null)")
                           : ack_locked(o, i, seqs, n, err);
    pthread_mutex_unlock(&o->mu);
    free(seqs);
    return s;
}

/* {"endpoint","alert_id","rule","key","reason","attempts","dead_at","alert"} as
 * one line (malloc'd, with '\n'); shared shape with the Redis backend. */
static char *dead_line(const char *ep, const vigil_alert_record *e, const char *reason, int attempts,
                       size_t *len) {
    char ts[40];
    vigil_time_format_rfc3339(vigil_now_ms(), ts, sizeof ts);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "endpoint", ep);
    cJSON_AddStringToObject(o, "alert_id", e->id);
    cJSON_AddStringToObject(o, "rule", e->rule);
    cJSON_AddStringToObject(o, "key", e->key);
    cJSON_AddStringToObject(o, "reason", reason ? reason : "");
    cJSON_AddNumberToObject(o, "attempts", attempts);
    cJSON_AddStringToObject(o, "dead_at", ts);
    cJSON *a = e->json ? cJSON_ParseWithLength(e->json, e->len) : NULL;
    if (!a) a = e->json ? cJSON_CreateString(e->json) : cJSON_CreateNull();
    cJSON_AddItemToObject(o, "alert", a);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return NULL;
    size_t n = strlen(txt);
    char *line = malloc(n + 2);
    if (line) {
        memcpy(line, txt, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        *len = n + 1;
    }
    cJSON_free(txt);
    return line;
}

static vigil_status f_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e,
                           const char *reason, int attempts, vigil_error *err) {
    fob *o = (fob *)ob;
    uint64_t seq;
    size_t len = 0;
    if (!o || !e || parse_seq(e->ref, &seq) != 0 || !e->ref[0])
        return vigil_error_set(err, VIGIL_EINVAL, "outbox dead: bad argument");
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i < 0) {
        pthread_mutex_unlock(&o->mu);
        return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
    }
    fent *f = find_seq(o, seq);
    if (!f || f->gone || (f->acked & (1ull << i))) {   /* already done: idempotent */
        pthread_mutex_unlock(&o->mu);
        return VIGIL_OK;
    }
    char *line = dead_line(ep, e, reason, attempts, &len);
    vigil_status s = VIGIL_OK;
    if (!line) s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    if (s == VIGIL_OK && o->dead_fd < 0) {
        o->dead_fd = open(o->dead_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (o->dead_fd < 0)
            s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->dead_path, strerror(errno));
    }
    if (s == VIGIL_OK && (full_write(o->dead_fd, line, len) != 0 || (o->do_fsync && fdatasync(o->dead_fd) != 0)))
        s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->dead_path, strerror(errno));
    free(line);
    if (s == VIGIL_OK) s = ack_locked(o, i, &seq, 1, err);
    pthread_mutex_unlock(&o->mu);
    return s;
}

static vigil_status f_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json,
                                vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o || !json) return vigil_error_set(err, VIGIL_EINVAL, "outbox list_dead: bad argument");
    *json = NULL;
    if (limit <= 0) limit = DEAD_LIMIT_DEFAULT;
    if (limit > DEAD_LIMIT_MAX) limit = DEAD_LIMIT_MAX;
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    int fd = open(o->dead_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        size_t size = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
        size_t from = size > DEAD_READ_MAX ? size - DEAD_READ_MAX : 0;
        char *data = size - from ? malloc(size - from + 1) : NULL;
        size_t got = 0;
        while (data && got < size - from) {
            ssize_t r = pread(fd, data + got, size - from - got, (off_t)(from + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        close(fd);
        if (data) {
            data[got] = '\0';
            /* newest first: walk lines from the end */
            size_t end = got;
            int found = 0;
            while (end > 0 && found < limit) {
                size_t start = end;
                while (start > 0 && data[start - 1] != '\n') start--;
                if (start > 0 || from == 0) {   /* a first partial line of a tail is skipped */
                    cJSON *line = cJSON_ParseWithLength(data + start, end - start);
                    const cJSON *e = cJSON_GetObjectItemCaseSensitive(line, "endpoint");
                    if (line && (!ep || (cJSON_IsString(e) && !strcmp(e->valuestring, ep)))) {
                        cJSON_AddItemToArray(arr, line);
                        found++;
                    } else {
                        cJSON_Delete(line);
                    }
                }
                end = start > 0 ? start - 1 : 0;
            }
            free(data);
        } else if (size - from) {
            cJSON_Delete(arr);
            return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
        }
    } else if (errno != ENOENT) {
        cJSON_Delete(arr);
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->dead_path, strerror(errno));
    }
    char *txt = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!txt) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    *json = strdup(txt);
    cJSON_free(txt);
    return *json ? VIGIL_OK : vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
}

static vigil_status f_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o || !n) return vigil_error_set(err, VIGIL_EINVAL, "outbox depth: bad argument");
    pthread_mutex_lock(&o->mu);
    int i = ep_index(o, ep);
    if (i >= 0) *n = o->unacked[i];
    pthread_mutex_unlock(&o->mu);
    if (i < 0) return vigil_error_set(err, VIGIL_ENOTFOUND, "outbox: unknown endpoint '%s'", ep ? ep : "(null)");
    return VIGIL_OK;
}

static void f_destroy(vigil_outbox *ob) {
    fob *o = (fob *)ob;
    if (!o) return;
    if (o->fd >= 0) close(o->fd);
    if (o->dead_fd >= 0) close(o->dead_fd);
    for (size_t i = 0; i < o->n; i++) free(o->v[i].blob);
    free(o->v);
    free(o->ids);
    for (int i = 0; i < o->neps; i++) free(o->names[i]);
    free(o->dir);
    free(o->path);
    free(o->tmp_path);
    free(o->dead_path);
    pthread_cond_destroy(&o->appended);
    pthread_mutex_destroy(&o->mu);
    o->magic = 0;
    free(o);
}

vigil_status vigil_outbox_file_open(const char *dir, const char *const *endpoints, int nendpoints,
                                    int do_fsync, vigil_outbox **out, vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "outbox: NULL argument");
    *out = NULL;
    if (!dir || !*dir || nendpoints < 0 || (nendpoints > 0 && !endpoints))
        return vigil_error_set(err, VIGIL_EINVAL, "outbox: bad directory or endpoint list");
    if (nendpoints > MAX_ENDPOINTS)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox: at most %d endpoints", MAX_ENDPOINTS);
    for (int i = 0; i < nendpoints; i++) {
        if (!endpoints[i] || !*endpoints[i] || strlen(endpoints[i]) > MAX_EP_NAME)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint name %d empty or over %d bytes",
                                   i + 1, MAX_EP_NAME);
        for (int k = 0; k < i; k++)
            if (!strcmp(endpoints[i], endpoints[k]))
                return vigil_error_set(err, VIGIL_EINVAL, "outbox: endpoint '%s' named twice", endpoints[i]);
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return vigil_error_set(err, VIGIL_EIO, "outbox: cannot create %s: %s", dir, strerror(errno));

    fob *o = calloc(1, sizeof *o);
    if (!o) return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    o->magic = FOB_MAGIC;
    o->fd = o->dead_fd = -1;
    o->do_fsync = do_fsync;
    pthread_mutex_init(&o->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->appended, &ca);
    pthread_condattr_destroy(&ca);
    o->base.read = f_read;
    o->base.ack = f_ack;
    o->base.dead = f_dead;
    o->base.list_dead = f_list_dead;
    o->base.depth = f_depth;
    o->base.destroy = f_destroy;
    o->dir = strdup(dir);
    o->path = join(dir, "outbox.log");
    o->tmp_path = join(dir, "outbox.log.tmp");
    o->dead_path = join(dir, "deadletter.jsonl");
    vigil_status s = VIGIL_OK;
    if (!o->dir || !o->path || !o->tmp_path || !o->dead_path) s = VIGIL_ENOMEM;
    for (int i = 0; s == VIGIL_OK && i < nendpoints; i++) {
        if (!(o->names[i] = strdup(endpoints[i]))) s = VIGIL_ENOMEM;
        o->neps = i + 1;
    }
    if (s == VIGIL_ENOMEM) vigil_error_set(err, s, "outbox: out of memory");
    o->allmask = nendpoints == 64 ? UINT64_MAX : ((1ull << nendpoints) - 1);
    if (s == VIGIL_OK) {
        unlink(o->tmp_path);   /* a compaction that crashed before its rename */
        o->fd = open(o->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (o->fd < 0) s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
    }
    if (s == VIGIL_OK) s = replay(o, err);
    if (s == VIGIL_OK) maybe_compact(o);
    if (s != VIGIL_OK) {
        f_destroy(&o->base);
        return s;
    }
    *out = &o->base;
    return VIGIL_OK;
}

vigil_status vigil_outbox_file_append(vigil_outbox *ob, const vigil_alert_record *alerts, int n,
                                      vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o || o->magic != FOB_MAGIC) return vigil_error_set(err, VIGIL_EINVAL, "outbox: not a file outbox");
    if (n < 0 || (n > 0 && !alerts)) return vigil_error_set(err, VIGIL_EINVAL, "outbox append: bad argument");
    for (int i = 0; i < n; i++) {
        const vigil_alert_record *a = &alerts[i];
        if (!valid_id(a->id))
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %d: id must be 1..%d "
                                   "printable characters", i + 1, ID_MAX);
        if (!a->json || a->len == 0)
            return vigil_error_set(err, VIGIL_EINVAL, "outbox append: alert %s: no JSON", a->id);
        if (a->len > MAX_PAYLOAD / 2)
            return vigil_error_set(err, VIGIL_ETOOBIG, "outbox append: alert %s: %zu bytes", a->id, a->len);
    }
    buf b = {0};
    int64_t now = vigil_now_ms();
    pthread_mutex_lock(&o->mu);
    uint64_t seq = o->last_seq;
    char *take = calloc((size_t)n + 1, 1);
    if (!take) {
        pthread_mutex_unlock(&o->mu);
        return vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
    }
    int count = 0;
    for (int i = 0; i < n; i++) {
        const vigil_alert_record *a = &alerts[i];
        if (id_find(o, a->id)) continue;                 /* the log still holds it */
        int dup = 0;
        for (int k = 0; k < i && !dup; k++) dup = take[k] && !strcmp(alerts[k].id, a->id);
        if (dup) continue;
        take[i] = 1;
        count++;
        rec_alert(&b, ++seq, now, a->mode == VIGIL_MODE_SHADOW, a->id, a->rule, a->severity, a->key, a->json, a->len);
    }
    vigil_status s = VIGIL_OK;
    if (count == 0) goto out;
    if (b.oom) {
        s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory");
        goto out;
    }
    if (full_write(o->fd, b.p, b.len) != 0 || (o->do_fsync && fdatasync(o->fd) != 0)) {
        s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
        if (ftruncate(o->fd, (off_t)o->file_size) != 0)   /* all or nothing */
            fprintf(stderr, "vigil: outbox %s: cannot truncate a failed append: %s\n", o->path,
                    strerror(errno));
        goto out;
    }
    o->file_size += b.len;
    seq = o->last_seq;
    for (int i = 0; i < n; i++) {
        if (!take[i]) continue;
        const vigil_alert_record *a = &alerts[i];
        char *blob = make_blob(a->rule, strlen(a->rule), a->severity, strlen(a->severity), a->key,
                               strlen(a->key), a->json, a->len);
        if (!blob || add_entry(o, ++seq, now, a->mode == VIGIL_MODE_SHADOW, a->id, blob, a->len,
                               alert_rec_bytes(a->id, a->rule, a->severity, a->key, a->len)) != 0) {
            /* On disk but not in memory: the next open replays it. */
            free(blob);
            s = vigil_error_set(err, VIGIL_ENOMEM, "outbox: out of memory (alert %s is in the log)", a->id);
            o->last_seq = seq;
        }
    }
    pthread_cond_broadcast(&o->appended);
out:
    pthread_mutex_unlock(&o->mu);
    free(take);
    free(b.p);
    return s;
}

void vigil_outbox_file_mark_snapshot(vigil_outbox *ob) {
    fob *o = (fob *)ob;
    if (!o || o->magic != FOB_MAGIC) return;
    pthread_mutex_lock(&o->mu);
    uint64_t fu = o->mark_prev;
    o->mark_prev = o->last_seq;
    if (fu > o->forget_upto) {
        buf b = {0};
        rec_meta(&b, o->last_seq, fu);
        /* Persisted so that a restart keeps forgetting what it may; if the
         * write fails the mark is only lost (ids are kept longer). */
        if (!b.oom && full_write(o->fd, b.p, b.len) == 0) {
            o->file_size += b.len;
            o->forget_upto = fu;
        }
        free(b.p);
    }
    pthread_mutex_unlock(&o->mu);
}
