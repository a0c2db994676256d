/* outbox_file.c — the alert outbox in a file, for the memory store (outbox.h):
 * its operations.
 *
 * Why it exists: with the memory store there is no Redis stream to keep
 * alerts until every webhook endpoint has them (DESIGN.md §8, issue 4
 * "nothing lost, nothing twice"). Workers append the alerts of a commit with
 * vigil_outbox_file_append; dispatchers read, ack and dead-letter through the
 * vigil_outbox interface; everything survives a crash because it is one
 * append-only log, <dir>/outbox.log, replayed on open.
 *
 * The outbox is three files with one job each (outbox_file_int.h): this one
 * holds the operations (open, append with deduplication, read/ack per
 * endpoint, dead letters, depth, mark_snapshot); outbox_file_log.c the bytes
 * on disk (record encoding with CRC, replay with torn-tail recovery,
 * compaction); outbox_file_index.c the index in memory (alerts by seq, ack
 * bits per endpoint, the id set).
 *
 * One append = one write(2) of all its records (then fdatasync when asked),
 * truncated back on failure, so appends are all or nothing. Acks are not
 * fsynced: a lost ack means a re-delivery (at-least-once), never a loss.
 *
 * Dead letters are JSON lines in <dir>/deadletter.jsonl, written (and
 * fsynced when asked) before the ack that removes the alert from the log.
 *
 * Threads: one mutex guards everything; read() waits on a condition
 * variable (CLOCK_MONOTONIC) that append broadcasts. */
#define _GNU_SOURCE
#include "vigil/clock.h"
#include "vigil/event.h"
#include "outbox_file_int.h"
#include "outbox_util.h"
#include "server/common/log.h"

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

#define DEAD_READ_MAX (64u << 20)    /* list_dead reads at most this tail */

/* ---- small helpers ------------------------------------------------------- */

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* ---- interface ----------------------------------------------------------- */

/* voutbox_held.scan: endpoint i's unacked alerts after `from`. Locked. */
static int f_scan(void *self, int i, uint64_t from, vigil_alert_record *out, int max, vigil_status *s,
                  vigil_error *err) {
    fob *o = self;
    uint64_t bit = 1ull << i;
    int got = 0;
    /* Everything below hint[i] is acked by i: skip it cheaply. */
    while (o->hint[i] < o->n && (o->v[o->hint[i]].gone || (o->v[o->hint[i]].acked & bit)))
        o->hint[i]++;
    size_t k = vfob_upper_bound(o, from);
    if (k < o->hint[i]) k = o->hint[i];
    for (; k < o->n && got < max; k++) {
        fent *e = &o->v[k];
        if (e->gone || (e->acked & bit)) continue;
        vigil_alert_record *x = &out[got];
        memset(x, 0, sizeof *x);
        x->json = malloc(e->json_len + 1);
        if (!x->json) {
            *s = voutbox_oom(err);
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
    return got;
}

static vigil_status f_read(vigil_outbox *ob, const char *ep, const char *after,
                           vigil_alert_record *out, int max, int *n, int wait_ms, vigil_error *err) {
    fob *o = (fob *)ob;
    voutbox_held h = {0};
    if (o) h = (voutbox_held){o, &o->mu, &o->appended, o->names, o->neps, f_scan};
    return voutbox_read(&h, ep, after, out, max, n, wait_ms, err);
}

/* Write one 'K' record for endpoint i and mark the entries. Locked. */
static vigil_status ack_locked(fob *o, int i, const uint64_t *seqs, int n, vigil_error *err) {
    buf b = {0};
    uint64_t bit = 1ull << i;
    vfob_krec kr;
    vfob_krec_begin(&b, &kr, o->names[i]);
    for (int k = 0; k < n; k++) {
        fent *e = vfob_find_seq(o, seqs[k]);
        if (!e || e->gone || (e->acked & bit)) continue;   /* idempotent */
        vfob_krec_add(&b, &kr, seqs[k]);
    }
    if (kr.cnt == 0) {
        free(b.p);
        return VIGIL_OK;
    }
    vfob_krec_end(&b, &kr);
    if (b.oom) {
        free(b.p);
        return voutbox_oom(err);
    }
    if (vfob_full_write(o->fd, b.p, b.len) != 0) {
        int e = errno;
        if (ftruncate(o->fd, (off_t)o->file_size) != 0) { /* best effort */ }
        free(b.p);
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(e));
    }
    o->file_size += b.len;
    free(b.p);
    for (int k = 0; k < n; k++) {
        fent *e = vfob_find_seq(o, seqs[k]);
        if (e) vfob_set_acked(o, e, i);
    }
    vfob_maybe_compact(o);
    return VIGIL_OK;
}

static vigil_status f_ack(vigil_outbox *ob, const char *ep, const char *const *refs, int n,
                          vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o) return vigil_error_set(err, VIGIL_EINVAL, "outbox ack: bad argument");
    vigil_status s = voutbox_parse_refs(refs, n, NULL, err);
    if (s != VIGIL_OK || n == 0) return s;
    uint64_t *seqs = malloc((size_t)n * sizeof *seqs);
    if (!seqs) return voutbox_oom(err);
    voutbox_parse_refs(refs, n, seqs, NULL);
    int i = voutbox_lock_ep(&o->mu, o->names, o->neps, ep, err);
    if (i < 0) {
        free(seqs);
        return VIGIL_ENOTFOUND;
    }
    s = ack_locked(o, i, seqs, n, err);
    pthread_mutex_unlock(&o->mu);
    free(seqs);
    return s;
}

static vigil_status f_dead(vigil_outbox *ob, const char *ep, const vigil_alert_record *e,
                           const char *reason, int attempts, vigil_error *err) {
    fob *o = (fob *)ob;
    uint64_t seq;
    size_t len = 0;
    if (!o || !e || !e->ref[0] || voutbox_parse_seq(e->ref, &seq) != 0)
        return vigil_error_set(err, VIGIL_EINVAL, "outbox dead: bad argument");
    int i = voutbox_lock_ep(&o->mu, o->names, o->neps, ep, err);
    if (i < 0) return VIGIL_ENOTFOUND;
    fent *f = vfob_find_seq(o, seq);
    if (!f || f->gone || (f->acked & (1ull << i))) {   /* already done: idempotent */
        pthread_mutex_unlock(&o->mu);
        return VIGIL_OK;
    }
    char *line = voutbox_dead_line(ep, e, reason, attempts, &len);
    vigil_status s = line ? VIGIL_OK : voutbox_oom(err);
    if (s == VIGIL_OK && o->dead_fd < 0) {
        o->dead_fd = open(o->dead_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (o->dead_fd < 0)
            s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->dead_path, strerror(errno));
    }
    if (s == VIGIL_OK && (vfob_full_write(o->dead_fd, line, len) != 0 || (o->do_fsync && fdatasync(o->dead_fd) != 0)))
        s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->dead_path, strerror(errno));
    free(line);
    if (s == VIGIL_OK) s = ack_locked(o, i, &seq, 1, err);
    pthread_mutex_unlock(&o->mu);
    return s;
}

static vigil_status f_list_dead(vigil_outbox *ob, const char *ep, int limit, char **json,
                                vigil_error *err) {
    fob *o = (fob *)ob;
    cJSON *arr = NULL;
    vigil_status s = voutbox_list_dead_begin(o, json, &limit, &arr, err);
    if (s != VIGIL_OK) return s;
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
            return voutbox_oom(err);
        }
    } else if (errno != ENOENT) {
        cJSON_Delete(arr);
        return vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->dead_path, strerror(errno));
    }
    return voutbox_list_dead_end(arr, json, err);
}

static vigil_status f_depth(vigil_outbox *ob, const char *ep, uint64_t *n, vigil_error *err) {
    fob *o = (fob *)ob;
    if (!o || !n) return vigil_error_set(err, VIGIL_EINVAL, "outbox depth: bad argument");
    return voutbox_depth(&o->mu, o->names, o->neps, o->unacked, ep, n, err);
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
    if (!dir || !*dir) return vigil_error_set(err, VIGIL_EINVAL, "outbox: bad directory");
    vigil_status s = voutbox_check_endpoints(endpoints, nendpoints, MAX_ENDPOINTS, MAX_EP_NAME, err);
    if (s != VIGIL_OK) return s;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return vigil_error_set(err, VIGIL_EIO, "outbox: cannot create %s: %s", dir, strerror(errno));

    fob *o = calloc(1, sizeof *o);
    if (!o) return voutbox_oom(err);
    o->magic = FOB_MAGIC;
    o->fd = o->dead_fd = -1;
    o->do_fsync = do_fsync;
    pthread_mutex_init(&o->mu, NULL);
    voutbox_cond_init(&o->appended);
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
    if (!o->dir || !o->path || !o->tmp_path || !o->dead_path) s = VIGIL_ENOMEM;
    for (int i = 0; s == VIGIL_OK && i < nendpoints; i++) {
        if (!(o->names[i] = strdup(endpoints[i]))) s = VIGIL_ENOMEM;
        o->neps = i + 1;
    }
    if (s == VIGIL_ENOMEM) voutbox_oom(err);
    o->allmask = nendpoints == 64 ? UINT64_MAX : ((1ull << nendpoints) - 1);
    if (s == VIGIL_OK) {
        unlink(o->tmp_path);   /* a compaction that crashed before its rename */
        o->fd = open(o->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (o->fd < 0) s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
    }
    if (s == VIGIL_OK) s = vfob_replay(o, err);
    if (s == VIGIL_OK) vfob_maybe_compact(o);
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
    vigil_status s = voutbox_check_alerts(alerts, n, ID_MAX, MAX_PAYLOAD / 2, err);
    if (s != VIGIL_OK) return s;
    buf b = {0};
    int64_t now = vigil_now_ms();
    pthread_mutex_lock(&o->mu);
    uint64_t seq = o->last_seq;
    char *take = calloc((size_t)n + 1, 1);
    if (!take) {
        pthread_mutex_unlock(&o->mu);
        return voutbox_oom(err);
    }
    int count = 0;
    for (int i = 0; i < n; i++) {
        const vigil_alert_record *a = &alerts[i];
        if (vfob_id_find(o, a->id)) continue;            /* the log still holds it */
        int dup = 0;
        for (int k = 0; k < i && !dup; k++) dup = take[k] && !strcmp(alerts[k].id, a->id);
        if (dup) continue;
        take[i] = 1;
        count++;
        vfob_rec_alert(&b, ++seq, now, a->mode == VIGIL_MODE_SHADOW, a->id, a->rule, a->severity, a->key, a->json,
                       a->len);
    }
    if (count == 0) goto out;
    if (b.oom) {
        s = voutbox_oom(err);
        goto out;
    }
    if (vfob_full_write(o->fd, b.p, b.len) != 0 || (o->do_fsync && fdatasync(o->fd) != 0)) {
        s = vigil_error_set(err, VIGIL_EIO, "outbox %s: %s", o->path, strerror(errno));
        if (ftruncate(o->fd, (off_t)o->file_size) != 0)   /* all or nothing */
            vigil_log(VIGIL_LOG_ERROR, "alerts", "outbox %s: cannot truncate a failed append: %s", o->path,
                    strerror(errno));
        goto out;
    }
    o->file_size += b.len;
    seq = o->last_seq;
    for (int i = 0; i < n; i++) {
        if (!take[i]) continue;
        const vigil_alert_record *a = &alerts[i];
        char *blob = vfob_make_blob(a->rule, strlen(a->rule), a->severity, strlen(a->severity), a->key,
                                    strlen(a->key), a->json, a->len);
        if (!blob || vfob_add_entry(o, ++seq, now, a->mode == VIGIL_MODE_SHADOW, a->id, blob, a->len,
                                    vfob_alert_rec_bytes(a->id, a->rule, a->severity, a->key, a->len)) != 0) {
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
        vfob_rec_meta(&b, o->last_seq, fu);
        /* Persisted so that a restart keeps forgetting what it may; if the
         * write fails the mark is only lost (ids are kept longer). */
        if (!b.oom && vfob_full_write(o->fd, b.p, b.len) == 0) {
            o->file_size += b.len;
            o->forget_upto = fu;
        }
        free(b.p);
    }
    pthread_mutex_unlock(&o->mu);
}
