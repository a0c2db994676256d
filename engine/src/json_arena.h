/* json_arena.h — cJSON's allocations from a per-thread arena while an event
 * is decoded (event_json.c). Private to engine/.
 *
 * cJSON allocates one block per node and per string; an event of eight
 * members is some twenty malloc/free pairs, each as dear as the node's
 * parse. cJSON has one process-wide allocator (cJSON_InitHooks), so the
 * hooks installed here serve every cJSON user of the process: they take
 * memory from the calling thread's arena while it is active (between
 * vjson_arena_begin and vjson_arena_end), from malloc otherwise; their
 * free ignores a pointer inside the thread's arena (checked by address
 * range) and hands anything else to free. A tree parsed inside the arena
 * lives until vjson_arena_end and must not be kept, printed into or freed
 * after it (cJSON_Delete on it inside is harmless but needless). */
#ifndef VIGIL_JSON_ARENA_H
#define VIGIL_JSON_ARENA_H

#include <stddef.h>

/* Start taking cJSON's allocations from this thread's arena, emptied. The
 * arena (64 KiB, allocated on the first call of each thread, freed at the
 * thread's exit; larger needs get blocks of their own, freed at the end)
 * may be begun again only after vjson_arena_end: a nested begin is ignored
 * (counted, so the matching end is too). */
void vjson_arena_begin(void);
/* Stop: cJSON allocates from malloc again on this thread; everything
 * allocated in the arena since begin is gone. */
void vjson_arena_end(void);

/* For tests: bytes handed out since begin, and blocks outside the first
 * chunk (events too big for it). */
size_t vjson_arena_used(void);
size_t vjson_arena_extra_blocks(void);

#endif
