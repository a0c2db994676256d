/* warm.c — vigil_engine_warm: software prefetch over a batch of events
 * before they are fed, and the hints that let feeding skip the key lookup
 * warm already did (vigil_engine.hint, checked in engine.c feed_group).
 * Apart from engine.c (which holds the key table it reads) to keep that
 * file under its size limit; nothing here changes what the engine does. */
#include "engine_int.h"

/* Most of the time of a fed event goes to cache misses on its key's slot,
 * state, rule states and window rings, which sit in random places of a large
 * heap. Touching them for a whole batch first, in stages (slots; then the
 * states they point to; then the rule states; then the rings and runs), lets
 * the memory system serve these misses in parallel instead of one after the
 * other (the batched-lookup technique of e.g. "Cuckoo++ hash tables",
 * Le Scouarnec 2018; DPDK's rte_hash bulk lookup). Only a hint: it changes
 * nothing observable. */
#define WARM_MAX 64

void vigil_engine_warm(vigil_engine *eng, vigil_event *const *evs, int n) {
    const vigil_ruleset *rs = eng->rs;
    while (n > 0) {
        int m = n < WARM_MAX ? n : WARM_MAX;
        uint64_t h[WARM_MAX * 4];
        int grp[WARM_MAX * 4];
        const vigil_event *who[WARM_MAX * 4];
        vkeystate *ks[WARM_MAX * 4];
        int nk = 0;
        size_t mask = eng->cap - 1;
        for (int i = 0; i < m; i++)
            for (int g = 0; g < rs->ngroups && g < 4; g++) {
                size_t kl;
                const char *k = vev_key(evs[i], g, &kl);
                if (!k) continue;
                h[nk] = veng_key_hash(g, k, kl);
                grp[nk] = g;
                who[nk] = evs[i];
                __builtin_prefetch(&eng->tab[h[nk] & mask]);
                nk++;
            }
        for (int j = 0; j < nk; j++) {   /* the state the home slot points to, when its hash matches */
            const vslot *sl = &eng->tab[h[j] & mask];
            if (sl->ks && sl->h == (uint32_t)h[j]) {
                __builtin_prefetch(sl->ks);
                __builtin_prefetch((const char *)sl->ks + 64);   /* its rule states' pointers, the key */
            }
        }
        for (int j = 0; j < nk; j++) {
            size_t kl = 0;
            const char *k = vev_key(who[j], grp[j], &kl);
            size_t slot = veng_ks_slot(eng, grp[j], k, kl, h[j]);
            ks[j] = eng->tab[slot].ks;
            if (ks[j]) eng->hint[hint_of(who[j], grp[j])] = (vhint){.ev = who[j], .slot = slot, .g = grp[j]};
        }
        for (int j = 0; j < nk; j++) {   /* a rule state's header may span two lines (a window's sums, counts) */
            if (!ks[j]) continue;
            const vgroup *gr = &rs->groups[grp[j]];
            for (int i = 0; i < gr->nrules; i++)
                if (ks[j]->rs[i]) {
                    __builtin_prefetch(ks[j]->rs[i]);
                    __builtin_prefetch((const char *)ks[j]->rs[i] + 64);
                }
        }
        for (int j = 0; j < nk; j++) {
            if (!ks[j]) continue;
            const vgroup *gr = &rs->groups[grp[j]];
            for (int i = 0; i < gr->nrules; i++) {
                const vrule *r = &rs->rules[gr->rules[i]];
                if (!ks[j]->rs[i]) continue;
                if (r->nsteps) vnfa_warm(ks[j]->rs[i]);
                else vwin_warm(ks[j]->rs[i], r);
            }
        }
        for (int j = 0; j < nk; j++) {   /* what the previous stage's lines point to: window_events' ends */
            if (!ks[j]) continue;
            const vgroup *gr = &rs->groups[grp[j]];
            for (int i = 0; i < gr->nrules; i++) {
                const vrule *r = &rs->rules[gr->rules[i]];
                if (ks[j]->rs[i] && !r->nsteps) vwin_warm_ids(ks[j]->rs[i], r);
            }
        }
        evs += m;
        n -= m;
    }
}
