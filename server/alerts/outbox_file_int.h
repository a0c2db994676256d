/* outbox_file_int.h — the file outbox's private parts, shared by its three
 * files and by nothing else:
 *   outbox_file.c        the outbox operations (open, append with
 *                        deduplication, read/ack per endpoint, dead letters,
 *                        depth, mark_snapshot, destroy);
 *   outbox_file_log.c    the on-disk record log (record encoding with CRC,
 *                        replay on open with torn-tail recovery, compaction);
 *   outbox_file_index.c  the in-memory index the log is replayed into (alerts
 *                        in seq order, per-endpoint ack bits, the id set).
 * The format is described in outbox.h and at the top of outbox_file_log.c.
 *
 * Locking: every function declared here expects the caller to hold fob.mu
 * (vfob_replay runs from open, before the outbox is shared). */
#ifndef VIGIL_OUTBOX_FILE_INT_H
#define VIGIL_OUTBOX_FILE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "outbox.h"

#define FOB_MAGIC 0x46424f58u        /* "XOBF" */
#define HDR "VIGILOB1"
#define HDR_LEN 8
#define REC_HDR 9                    /* u32 len, u32 crc, u8 type */
#define MAX_PAYLOAD (64u << 20)      /* a record over this is corruption */
#define MAX_ENDPOINTS 64             /* acks are a 64-bit mask per alert */
#define MAX_EP_NAME 64
#define ID_MAX 32
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

static inline int fully_acked(const fob *o, const fent *e) {
    return e->gone || (e->acked & o->allmask) == o->allmask;
}

static inline const char *blob_rule(const fent *e) { return e->blob; }
static inline const char *blob_sev(const fent *e) { return e->blob + strlen(e->blob) + 1; }
static inline const char *blob_key(const fent *e) {
    const char *s = blob_sev(e);
    return s + strlen(s) + 1;
}
static inline const char *blob_json(const fent *e) {
    const char *k = blob_key(e);
    return k + strlen(k) + 1;
}

/* ---- the in-memory index (outbox_file_index.c) --------------------------- */

size_t vfob_upper_bound(const fob *o, uint64_t after);    /* first entry with seq > after */
fent *vfob_find_seq(fob *o, uint64_t seq);                /* NULL: not held */
idslot *vfob_id_find(const fob *o, const char *id);       /* NULL: the log does not hold it */
int vfob_id_rebuild(fob *o);                              /* from v (after compaction); -1 ENOMEM */
/* Add a replayed or appended alert (blob ownership moves in on success).
 * -1 when out of memory. */
int vfob_add_entry(fob *o, uint64_t seq, int64_t ms, int shadow, const char *id, char *blob,
                   size_t json_len, size_t rec_bytes);
int vfob_set_acked(fob *o, fent *e, int i);               /* endpoint i acked e; 1 when news */
/* "rule\0sev\0key\0json\0", malloc'd; NULL when out of memory. */
char *vfob_make_blob(const char *rule, size_t rl, const char *sev, size_t sl, const char *key,
                     size_t kl, const char *json, size_t jl);

/* ---- the record log (outbox_file_log.c) ---------------------------------- */

/* A growing buffer of records; oom set once a reservation failed (the
 * records are then incomplete and must not be written). Free p. */
typedef struct buf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} buf;

/* A 'K' record being built: begin, add seqs, end (which patches the count
 * and the checksum and resets cnt to 0). */
typedef struct vfob_krec {
    size_t at, cnt_at;
    size_t cnt;
} vfob_krec;

int vfob_full_write(int fd, const void *data, size_t n);   /* 0, or -1 with errno */
void vfob_rec_alert(buf *b, uint64_t seq, int64_t ms, int shadow, const char *id, const char *rule,
                    const char *sev, const char *key, const char *json, size_t len);
size_t vfob_alert_rec_bytes(const char *id, const char *rule, const char *sev, const char *key, size_t len);
void vfob_rec_meta(buf *b, uint64_t last_seq, uint64_t forget_upto);
void vfob_krec_begin(buf *b, vfob_krec *k, const char *endpoint);
void vfob_krec_add(buf *b, vfob_krec *k, uint64_t seq);
void vfob_krec_end(buf *b, vfob_krec *k);
/* Read the whole log (o->fd), apply its records, truncate a torn tail. */
vigil_status vfob_replay(fob *o, vigil_error *err);
/* Compact when the log is big and mostly not needed; failures are logged. */
void vfob_maybe_compact(fob *o);

#endif
