/* json_arena.c — cJSON's allocations from a per-thread arena while an event
 * is decoded (json_arena.h says when and why).
 *
 * First stage of the flow, under event_json.c. The hooks are installed once,
 * by a constructor, before main starts any thread (cJSON_InitHooks writes
 * process-wide state that every cJSON call reads); this object is linked
 * into every program that can decode an event. STYLE.md's "per-event data
 * lives in a batch arena" (h2o's per-request pools), applied to the parse
 * tree: bump allocation in one 64 KiB chunk per thread, reset per event.
 * Under AddressSanitizer the chunk's unused bytes are poisoned and every
 * allocation is followed by a poisoned redzone, so reads past a node or a
 * string stay visible to ASan (cJSON itself is not instrumented). */
#include "json_arena.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <cjson/cJSON.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define REDZONE 16
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define REDZONE 0
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define CHUNK (64 * 1024)
#define ALIGN 16   /* what malloc guarantees on x86-64 and aarch64 */

typedef struct big { struct big *next; } big;   /* a block of its own, payload after the header (ALIGN) */

typedef struct arena {
    char *lo, *hi;     /* the chunk [lo, hi) */
    char *cur;         /* next free byte */
    big *extra;        /* blocks of their own since begin */
    size_t nextra;
    int depth;         /* begin - end; > 0: active */
} arena;

static _Thread_local arena A;
static pthread_key_t key;   /* frees a thread's chunk at its exit */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void chunk_free(void *p) {
    UNPOISON(p, CHUNK);
    free(p);
}
static void make_key(void) { (void)pthread_key_create(&key, chunk_free); }

static void *hook_malloc(size_t n) {
    arena *a = &A;
    if (a->depth <= 0) return malloc(n);
    size_t need = (n + REDZONE + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need >= n && (size_t)(a->hi - a->cur) >= need) {
        char *p = a->cur;
        a->cur += need;
        UNPOISON(p, n);
        return p;
    }
    /* too big for what is left: a block of its own, freed at vjson_arena_end */
    if (n > SIZE_MAX - sizeof(big) - ALIGN) return NULL;
    big *b = malloc(ALIGN + n);
    if (!b) return NULL;
    b->next = a->extra;
    a->extra = b;
    a->nextra++;
    return (char *)b + ALIGN;
}

static void hook_free(void *p) {
    arena *a = &A;
    char *c = p;
    if (!p) return;
    if (c >= a->lo && c < a->hi) return;   /* in the chunk: gone at the next begin */
    for (big *b = a->extra; b; b = b->next)
        if (c == (char *)b + ALIGN) return;   /* freed at vjson_arena_end */
    free(p);
}

__attribute__((constructor)) static void install_hooks(void) {
    cJSON_Hooks h = {.malloc_fn = hook_malloc, .free_fn = hook_free};
    cJSON_InitHooks(&h);
}

void vjson_arena_begin(void) {
    arena *a = &A;
    if (a->depth++ > 0) return;
    if (!a->lo) {   /* first use on this thread; without a chunk every block is a big one */
        (void)pthread_once(&key_once, make_key);
        char *c = malloc(CHUNK);
        if (c && pthread_setspecific(key, c) == 0) {
            a->lo = c;
            a->hi = c + CHUNK;
        } else {
            free(c);
        }
    }
    a->cur = a->lo;
    POISON(a->lo, (size_t)(a->hi - a->lo));
}

void vjson_arena_end(void) {
    arena *a = &A;
    if (a->depth <= 0 || --a->depth > 0) return;
    while (a->extra) {
        big *b = a->extra;
        a->extra = b->next;
        free(b);
    }
    a->nextra = 0;
    a->cur = a->lo;
}

size_t vjson_arena_used(void) { return (size_t)(A.cur - A.lo); }
size_t vjson_arena_extra_blocks(void) { return A.nextra; }
