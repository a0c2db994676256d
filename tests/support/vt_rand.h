/* vt_rand.h — the tests' one seeded generator (xorshift64*, Vigna 2016):
 * generated inputs are the same on every run and machine, so a failure
 * names its seed and comes back. Used by the decode and batch tests. */
#ifndef VT_RAND_H
#define VT_RAND_H

#include <stdint.h>

/* The next number of the sequence in *state (never 0). */
static inline uint64_t vt_xorshift(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

#endif
