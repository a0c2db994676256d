/* snapshot.c — the memory store survives a restart (DESIGN.md §3, issue 4).
 *
 * With the memory store every key's state lives only in the workers'
 * engines. Each worker writes its part to <data_dir>/state-<i>-of-<n>.snap
 * periodically (snapshot_interval) and when the server stops, at a batch
 * boundary, together with the source offsets of the (key group, partition)
 * pairs it owns; JetStream messages are acked only once a snapshot covers
 * them, so after a crash the stream redelivers exactly what the snapshot
 * lacks and the offsets skip what it has. A snapshot is written to a
 * temporary file, fsynced and renamed over the old one: a crash leaves the
 * previous snapshot whole.
 *
 * Format (integers little-endian):
 *   "VIGILSNAP1\n"  u32 partitions  u32 nworkers  u32 worker
 *   u32 npairs, then per pair: u16 len, group name, u32 partition, u64 seq, i64 watermark
 *   per key: u8 1, u16 len, group name, u32 len, key, u32 len, state record (codec.c)
 *   u8 0, u32 CRC-32 (zlib) of every byte before it
 * Records name their key group by its key field, so a snapshot loads into
 * a ruleset whose groups moved or changed; keys of a group that is gone are
 * dropped (counted), and files of another worker count are re-routed by
 * key hash and rewritten at once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "server/common/fault.h"
#include "snapshot.h"
#include "vigil/rules.h"
#include "server/common/log.h"

#define SNAP_MAGIC "VIGILSNAP1\n"
#define SNAP_MAGIC_LEN 11

typedef struct wfile {
    FILE *f;
    uLong crc;
    int failed;
} wfile;

static void w_bytes(wfile *w, const void *p, size_t n) {
    if (w->failed || !n) return;
    if (fwrite(p, 1, n, w->f) != n) w->failed = errno ? errno : EIO;
    w->crc = crc32(w->crc, p, (uInt)n);
}

static void w_u8(wfile *w, unsigned v) {
    unsigned char b = (unsigned char)v;
    w_bytes(w, &b, 1);
}

static void w_u16(wfile *w, unsigned v) {
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    w_bytes(w, b, 2);
}

static void w_u32(wfile *w, uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, 4);
}

static void w_u64(wfile *w, uint64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    w_bytes(w, b, 8);
}

typedef struct snap_ctx {
    wfile *w;
    uint64_t keys;
    int fault;
} snap_ctx;

static int put_record(void *ud, const vigil_store_record *r) {
    snap_ctx *c = ud;
    size_t gl = strlen(r->k.group_name);
    w_u8(c->w, 1);
    w_u16(c->w, (unsigned)gl);
    w_bytes(c->w, r->k.group_name, gl);
    w_u32(c->w, (uint32_t)r->k.keylen);
    w_bytes(c->w, r->k.key, r->k.keylen);
    w_u32(c->w, (uint32_t)r->len);
    w_bytes(c->w, r->data, r->len);
    c->keys++;
    if (c->fault && c->keys == 1) {   /* VIGIL_FAULT=commit:N: die with half a snapshot on disk */
        fflush(c->w->f);
        vigil_fault_kill("commit");
    }
    return c->w->failed != 0;
}

static void snap_path(const vigil_snapshot_view *v, int idx, int n, const char *suffix, char *buf, size_t len) {
    snprintf(buf, len, "%s/state-%d-of-%d.snap%s", v->data_dir, idx, n, suffix);
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

vigil_status vigil_snapshot_write(const vigil_snapshot_view *v, int worker, vigil_error *err) {
    char path[4096], tmp[4100];
    snap_path(v, worker, v->nworkers, "", path, sizeof path);
    snap_path(v, worker, v->nworkers, ".tmp", tmp, sizeof tmp);
    wfile w = {.f = fopen(tmp, "wb"), .crc = crc32(0L, Z_NULL, 0)};
    if (!w.f) return vigil_error_set(err, VIGIL_EIO, "snapshot %s: %s", tmp, strerror(errno));
    w_bytes(&w, SNAP_MAGIC, SNAP_MAGIC_LEN);
    w_u32(&w, (uint32_t)v->partitions);
    w_u32(&w, (uint32_t)v->nworkers);
    w_u32(&w, (uint32_t)worker);
    int ng = vigil_ruleset_group_count(v->rs);
    uint32_t npairs = 0;
    for (int pair = 0; pair < ng * v->partitions; pair++)
        if ((pair % v->partitions) % v->nworkers == worker && v->off_seq[pair]) npairs++;
    w_u32(&w, npairs);
    int64_t wm = vigil_engine_watermark(v->engines[worker]);
    for (int pair = 0; pair < ng * v->partitions; pair++) {
        if ((pair % v->partitions) % v->nworkers != worker || !v->off_seq[pair]) continue;
        const char *gname = vigil_ruleset_group_key(v->rs, pair / v->partitions);
        w_u16(&w, (unsigned)strlen(gname));
        w_bytes(&w, gname, strlen(gname));
        w_u32(&w, (uint32_t)(pair % v->partitions));
        w_u64(&w, v->off_seq[pair]);
        w_u64(&w, (uint64_t)wm);
    }
    snap_ctx c = {.w = &w, .fault = vigil_fault_due("commit")};
    vigil_error e2;
    vigil_error_clear(&e2);
    vigil_status st = vigil_engine_foreach_state(v->engines[worker], put_record, &c, &e2);
    w_u8(&w, 0);
    uLong crc = w.crc;
    w_u32(&w, (uint32_t)crc);
    if (c.fault && c.keys == 0) {
        fflush(w.f);
        vigil_fault_kill("commit");
    }
    int failed = w.failed || st != VIGIL_OK;
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) failed = failed ? failed : errno;
    if (fclose(w.f) != 0 && !failed) failed = errno;
    if (failed) {
        unlink(tmp);
        return vigil_error_set(err, VIGIL_EIO, "snapshot %s: %s", tmp,
                               st != VIGIL_OK ? e2.msg : strerror(w.failed ? w.failed : failed));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return vigil_error_set(err, VIGIL_EIO, "snapshot: rename %s: %s", path, strerror(e));
    }
    fsync_dir(v->data_dir);
    return VIGIL_OK;
}

/* ---- loading ---------------------------------------------------------------- */

typedef struct rfile {
    const unsigned char *p, *end;
    int bad;
} rfile;

static const unsigned char *r_bytes(rfile *r, size_t n) {
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    return p;
}

static uint64_t r_uint(rfile *r, int bytes) {
    const unsigned char *p = r_bytes(r, (size_t)bytes);
    uint64_t v = 0;
    for (int i = 0; p && i < bytes; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int group_index(const vigil_snapshot_view *v, const unsigned char *name, size_t len) {
    int ng = vigil_ruleset_group_count(v->rs);
    for (int g = 0; g < ng; g++) {
        const char *k = vigil_ruleset_group_key(v->rs, g);
        if (strlen(k) == len && memcmp(k, name, len) == 0) return g;
    }
    return -1;
}

static int mkdirs(const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0750) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(buf, 0750) != 0 && errno != EEXIST ? -1 : 0;
}

static vigil_status load_file(const vigil_snapshot_view *v, const char *path, uint64_t *keys, uint64_t *dropped, int *stale,
                              vigil_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return vigil_error_set(err, VIGIL_EIO, "snapshot %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return vigil_error_set(err, VIGIL_ENOMEM, "snapshot %s: out of memory", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    fclose(f);
    vigil_status st = VIGIL_OK;
    if (len < SNAP_MAGIC_LEN + 4 + 1 || memcmp(buf, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0) {
        st = vigil_error_set(err, VIGIL_ESTORE, "snapshot %s is not a vigil snapshot (bad magic); move it away to start "
                             "without it", path);
        goto out;
    }
    uint32_t want = (uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 | (uint32_t)buf[len - 2] << 16 |
                    (uint32_t)buf[len - 1] << 24;
    if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4)) != want) {
        st = vigil_error_set(err, VIGIL_ESTORE, "snapshot %s is damaged (CRC mismatch); move it away to start "
                             "without it (its state is then lost)", path);
        goto out;
    }
    rfile r = {.p = buf + SNAP_MAGIC_LEN, .end = buf + len - 4};
    uint32_t parts = (uint32_t)r_uint(&r, 4), nw = (uint32_t)r_uint(&r, 4);
    r_uint(&r, 4);
    if (!r.bad && parts != (uint32_t)v->partitions) {
        st = vigil_error_set(err, VIGIL_EINVAL, "snapshot %s was made with %u partitions, not %d: partitions are "
                             "fixed for a deployment (set partitions = %u)", path, parts, v->partitions, parts);
        goto out;
    }
    if (nw != (uint32_t)v->nworkers) *stale = 1;
    uint32_t npairs = (uint32_t)r_uint(&r, 4);
    for (uint32_t i = 0; i < npairs && !r.bad; i++) {
        size_t gl = (size_t)r_uint(&r, 2);
        const unsigned char *gn = r_bytes(&r, gl);
        uint32_t part = (uint32_t)r_uint(&r, 4);
        uint64_t seq = r_uint(&r, 8);
        int64_t wm = (int64_t)r_uint(&r, 8);
        int g = gn ? group_index(v, gn, gl) : -1;
        if (g < 0 || part >= (uint32_t)v->partitions) continue;
        int pair = g * v->partitions + (int)part;
        if (seq > v->off_seq[pair]) v->off_seq[pair] = seq;
        if (wm > v->off_wm[pair]) v->off_wm[pair] = wm;
    }
    while (!r.bad) {
        unsigned kind = (unsigned)r_uint(&r, 1);
        if (r.bad || kind == 0) break;
        size_t gl = (size_t)r_uint(&r, 2);
        const unsigned char *gn = r_bytes(&r, gl);
        size_t kl = (size_t)r_uint(&r, 4);
        const unsigned char *key = r_bytes(&r, kl);
        size_t dl = (size_t)r_uint(&r, 4);
        const unsigned char *data = r_bytes(&r, dl);
        if (r.bad) break;
        int g = group_index(v, gn, gl);
        if (g < 0) {
            (*dropped)++;
            continue;
        }
        int part = (int)(vigil_hash((const char *)key, kl) % (uint64_t)v->partitions);
        vigil_error e;
        if (vigil_engine_load_state(v->engines[part % v->nworkers], g, (const char *)key, kl, data, dl, &e) != VIGIL_OK) {
            st = vigil_error_set(err, VIGIL_ESTORE, "snapshot %s: %s", path, e.msg);
            goto out;
        }
        (*keys)++;
    }
    if (r.bad) st = vigil_error_set(err, VIGIL_ESTORE, "snapshot %s is truncated inside a record", path);
out:
    free(buf);
    return st;
}

vigil_status vigil_snapshot_load(const vigil_snapshot_view *v, vigil_error *err) {
    if (mkdirs(v->data_dir) != 0)
        return vigil_error_set(err, VIGIL_EIO, "data directory %s: %s", v->data_dir, strerror(errno));
    DIR *d = opendir(v->data_dir);
    if (!d) return vigil_error_set(err, VIGIL_EIO, "data directory %s: %s", v->data_dir, strerror(errno));
    char **files = NULL;
    size_t nfiles = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int a, b, n = 0;
        const char *name = de->d_name;
        size_t nl = strlen(name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", v->data_dir, name);
        if (nl > 9 && strcmp(name + nl - 9, ".snap.tmp") == 0 && strncmp(name, "state-", 6) == 0) {
            unlink(path);   /* a snapshot that a crash interrupted */
            continue;
        }
        if (sscanf(name, "state-%d-of-%d.snap%n", &a, &b, &n) != 2 || (size_t)n != nl) continue;
        char **nf = realloc(files, (nfiles + 1) * sizeof *nf);
        if (!nf) break;
        files = nf;
        files[nfiles++] = strdup(path);
    }
    closedir(d);
    vigil_status st = VIGIL_OK;
    uint64_t keys = 0, dropped = 0;
    int stale = 0;
    for (size_t i = 0; i < nfiles && st == VIGIL_OK; i++)
        if (files[i]) st = load_file(v, files[i], &keys, &dropped, &stale, err);
    if (st == VIGIL_OK && nfiles)
        vigil_log(VIGIL_LOG_INFO, "state", "snapshot: %llu keys from %zu file(s) in %s%s", (unsigned long long)keys, nfiles,
                v->data_dir, dropped ? " (keys of key groups no rule uses any more were dropped)" : "");
    if (st == VIGIL_OK && stale) {
        /* written by another worker count: rewrite as this one, then drop the others */
        for (int i = 0; i < v->nworkers && st == VIGIL_OK; i++) st = vigil_snapshot_write(v, i, err);
        for (size_t i = 0; i < nfiles && st == VIGIL_OK; i++) {
            int a, b;
            const char *base = strrchr(files[i], '/');
            if (base && sscanf(base + 1, "state-%d-of-%d.snap", &a, &b) == 2 && b != v->nworkers) unlink(files[i]);
        }
    }
    for (size_t i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    return st;
}
