/* rendezvous.c — the preferred member of a pair (rendezvous hashing); see
 * rendezvous.h. */
#include "rendezvous.h"

#include <stdio.h>
#include <string.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *s = data;
    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* SplitMix64's output function (Steele, Lea, Flood 2014). */
static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t vigil_rendezvous_score(const char *member, const char *gtoken, int p) {
    char num[16];
    int k = snprintf(num, sizeof num, "%d", p);
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, member ? member : "", member ? strlen(member) + 1 : 1);
    h = fnv1a(h, gtoken ? gtoken : "", gtoken ? strlen(gtoken) + 1 : 1);
    h = fnv1a(h, num, (size_t)k);
    return mix(h);
}

int vigil_rendezvous_pick(const char *const *members, int n, const char *gtoken, int p) {
    int best = -1;
    uint64_t best_score = 0;
    for (int i = 0; i < n; i++) {
        if (!members[i]) continue;
        uint64_t s = vigil_rendezvous_score(members[i], gtoken, p);
        if (best < 0 || s > best_score || (s == best_score && strcmp(members[i], members[best]) < 0)) {
            best = i;
            best_score = s;
        }
    }
    return best;
}
