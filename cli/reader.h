/* reader.h — a thread that reads merged inputs ahead of the engine.
 *
 * `vigil replay` spends about a third of its time reading (gunzip, CSV or
 * JSON decode, merge) and the rest matching. The reader runs the first part
 * on its own thread and hands the events over in batches through a small
 * bounded queue, so the engine thread only matches: a two-stage pipeline,
 * as the server's intake threads and workers are. Events come out in the
 * merge's order, exactly as vigil_merge_next gives them. */
#ifndef VIGIL_READER_H
#define VIGIL_READER_H

#include "input.h"

#define VIGIL_READER_BATCH 256

typedef struct vigil_reader vigil_reader;

/* Start reading m on a new thread. The reader does not own m: close it
 * after vigil_reader_destroy. Returns NULL when out of memory or when the
 * thread cannot start. */
vigil_reader *vigil_reader_start(vigil_merge *m);

/* The next batch: up to VIGIL_READER_BATCH events, owned by the caller from
 * now on (release each). Blocks until a batch is ready; returns 0 at the
 * end of input. *progress (may be NULL) gets the merge's progress, 0..1. */
int vigil_reader_next(vigil_reader *r, vigil_event **evs, double *progress);

/* Hand events the caller is done with back to the reader thread, which
 * releases them: the allocator then frees on the thread that allocated
 * (no cross-thread frees, no arena lock contention), and the engine thread
 * does less. Takes the caller's references. n <= VIGIL_READER_BATCH. */
void vigil_reader_recycle(vigil_reader *r, vigil_event **evs, int n);

/* Stop the thread (also before the end of input) and free the reader and
 * the events it still holds. Accepts NULL. */
void vigil_reader_destroy(vigil_reader *r);

#endif
