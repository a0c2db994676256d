/* snapshot.h — the memory store's snapshots (DESIGN.md §3, issue 4): each
 * worker's key states and its pairs' source offsets in
 * <data_dir>/state-<i>-of-<n>.snap (format in snapshot.c), so the memory
 * store survives a restart. */
#ifndef VIGIL_SNAPSHOT_H
#define VIGIL_SNAPSHOT_H

#include <stdint.h>
#include "vigil/engine.h"

/* What a snapshot reads and writes: borrowed from the route wing. */
typedef struct vigil_snapshot_view {
    const char *data_dir;          /* created if absent */
    const vigil_ruleset *rs;
    int partitions, nworkers;
    vigil_engine *const *engines;  /* one per worker: pair p belongs to worker p % nworkers */
    uint64_t *off_seq;             /* [group * partitions + p]: last applied stream sequence */
    int64_t *off_wm;               /* [group * partitions + p]: the watermark then (ms) */
} vigil_snapshot_view;

/* Write worker `worker`'s snapshot: temporary file, fsync, rename (a crash
 * leaves the previous one whole). VIGIL_EIO with the reason. Only that
 * worker's thread may call it while the workers run. */
vigil_status vigil_snapshot_write(const vigil_snapshot_view *v, int worker, vigil_error *err);

/* Load every snapshot in data_dir into the engines and offsets (raising
 * offsets and watermarks); files of another worker count are re-routed by
 * key hash and rewritten. Errors: VIGIL_EIO, VIGIL_ESTORE (damaged file:
 * the message says what to do), VIGIL_EINVAL (another partition count). */
vigil_status vigil_snapshot_load(const vigil_snapshot_view *v, vigil_error *err);

#endif
