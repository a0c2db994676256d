/* outbox_file_log.c — the file outbox's on-disk record log (outbox_file_int.h).
 *
 * Why it exists: the file outbox (outbox_file.c) must survive a crash with
 * nothing lost and nothing twice, so everything it knows is one append-only
 * log, <dir>/outbox.log, replayed on open into the in-memory index
 * (outbox_file_index.c). This file owns the bytes of that log: encoding
 * records, replaying them, and compacting the log. The operations decide
 * what to write and when.
 *
 *   "VIGILOB1", then records [u32 len][u32 crc32(type,payload)][u8 type][payload]
 *     'A' alert   u64 seq, i64 appended_ms, u8 shadow, str id, rule, severity, key, json
 *     'K' acks    str endpoint, u32 n, u64 seq × n
 *     'D' dedup   u64 seq, str id        (acked by all; kept so a replay is not re-sent)
 *     'M' meta    u64 last_seq, u64 forget_upto
 *   (integers little-endian, str = u32 length + bytes)
 *
 * A crash can only tear the tail (each append is one write(2), truncated
 * back on failure): on open the first short record or checksum mismatch
 * ends the replay and the file is truncated there (reported on stderr).
 *
 * Compaction rewrites the log to outbox.log.tmp (fsync, rename, fsync of the
 * directory) with only what is still needed: alerts some endpoint has not
 * acked (with the acks they have), and the ids of acked alerts appended after
 * the forget-up-to mark (mark_snapshot), which deduplication still needs.
 *
 * Threads: the caller holds fob.mu (replay: before the outbox is shared). */
#define _GNU_SOURCE
#include "outbox_file_int.h"
#include "outbox_util.h"
#include "server/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define COMPACT_MIN_BYTES (1u << 20)
#define ACKS_PER_RECORD 65536

/* ---- files --------------------------------------------------------------- */

int vfob_full_write(int fd, const void *data, size_t n) {
    const char *p = data;
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

/* ---- record encoding ----------------------------------------------------- */

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

void vfob_rec_alert(buf *b, uint64_t seq, int64_t ms, int shadow, const char *id, const char *rule,
                    const char *sev, const char *key, const char *json, size_t len) {
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

size_t vfob_alert_rec_bytes(const char *id, const char *rule, const char *sev, const char *key, size_t len) {
    return REC_HDR + 8 + 8 + 1 + 5 * 4 + strlen(id) + strlen(rule) + strlen(sev) + strlen(key) + len;
}

void vfob_rec_meta(buf *b, uint64_t last_seq, uint64_t forget_upto) {
    size_t at = rec_begin(b, 'M');
    b_u64(b, last_seq);
    b_u64(b, forget_upto);
    rec_end(b, at);
}

void vfob_krec_begin(buf *b, vfob_krec *k, const char *endpoint) {
    k->at = rec_begin(b, 'K');
    b_str(b, endpoint, strlen(endpoint));
    k->cnt_at = b->len;
    k->cnt = 0;
    b_u32(b, 0);
}

void vfob_krec_add(buf *b, vfob_krec *k, uint64_t seq) {
    b_u64(b, seq);
    k->cnt++;
}

void vfob_krec_end(buf *b, vfob_krec *k) {
    if (!b->oom) put_u32_at(b->p + k->cnt_at, (uint32_t)k->cnt);
    rec_end(b, k->at);
    k->cnt = 0;
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
        if (vfob_id_find(o, idb)) return 0;      /* cannot happen: appends deduplicate */
        char *blob = vfob_make_blob(rule, rl, sev, sl, key, kl, json, jl);
        if (!blob) return -2;
        if (vfob_add_entry(o, seq, ms, (int)shadow, idb, blob, jl, REC_HDR + len) != 0) {
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
        if (vfob_add_entry(o, seq, 0, 0, idb, NULL, 0, GONE_BYTES) != 0) return -2;
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
        int i = voutbox_ep_index(o->names, o->neps, nb);
        for (uint32_t k = 0; k < cnt; k++) {
            uint64_t seq = r_u64(&r);
            fent *e = i >= 0 ? vfob_find_seq(o, seq) : NULL;
            if (e) vfob_set_acked(o, e, i);
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
vigil_status vfob_replay(fob *o, vigil_error *err) {
    struct stat st;
    if (fstat(o->fd, &st) != 0)
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
    size_t size = (size_t)st.st_size;
    if (size < HDR_LEN) {
        /* new, or torn before its header was complete: start afresh */
        if (size > 0) vigil_log(VIGIL_LOG_INFO, "alerts", "outbox %s: torn header of %zu bytes ignored", o->path, size);
        if (ftruncate(o->fd, 0) != 0 || lseek(o->fd, 0, SEEK_SET) < 0 ||
            vfob_full_write(o->fd, HDR, HDR_LEN) != 0 || fsync(o->fd) != 0)
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
        vigil_log(VIGIL_LOG_WARN, "alerts", "outbox %s: torn tail ignored (%s at byte %zu, %zu bytes dropped)",
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
    vfob_rec_meta(&b, o->last_seq, o->forget_upto);
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
            vfob_rec_alert(&b, e->seq, e->appended_ms, e->shadow, e->id, blob_rule(e), blob_sev(e),
                           blob_key(e), blob_json(e), e->json_len);
        }
        if (b.len >= (1u << 20)) {
            if (b.oom || vfob_full_write(fd, b.p, b.len) != 0) goto io;
            new_size += b.len;
            b.len = 0;
        }
    }
    for (int k = 0; k < o->neps; k++) {
        uint64_t bit = 1ull << k;
        vfob_krec kr = {0, 0, 0};
        for (size_t i = 0; i <= o->n; i++) {
            int last = i == o->n;
            fent *e = last ? NULL : &o->v[i];
            int take = e && !fully_acked(o, e) && (e->acked & bit);
            if (take) {
                if (kr.cnt == 0) vfob_krec_begin(&b, &kr, o->names[k]);
                vfob_krec_add(&b, &kr, e->seq);
            }
            if (kr.cnt && (last || kr.cnt == ACKS_PER_RECORD)) vfob_krec_end(&b, &kr);
        }
    }
    if (b.oom || vfob_full_write(fd, b.p, b.len) != 0) goto io;
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
        if (vfob_id_rebuild(o) != 0)
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

void vfob_maybe_compact(fob *o) {
    if (o->file_size < COMPACT_MIN_BYTES || o->live_bytes * 2 >= o->file_size ||
        o->file_size < o->compact_retry_size)
        return;
    vigil_error err;
    vigil_error_clear(&err);
    if (compact_locked(o, &err) != VIGIL_OK) {
        /* e.g. disk full: not again at every ack, only once the log grew a quarter */
        o->compact_retry_size = o->file_size + o->file_size / 4;
        vigil_log(VIGIL_LOG_ERROR, "alerts", "%s", err.msg);
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

