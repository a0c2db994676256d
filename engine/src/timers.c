/* timers.c — event-time timers: a binary min-heap by time of (key state,
 * rule slot), fired as the watermark passes them (`within` expiry and
 * absences in nfa.c, window ends in window.c, window_late.c).
 *
 * Why a file of its own: engine.c reached the 1000-line limit, and the heap
 * is a structure with its own job. Firing touches the key state and the rule
 * state of each timer, in random places of a large heap: when several are
 * due at once (a watermark jump, the end of input), they are fetched
 * together first (veng_timers_due), the batched prefetch of engine.c's
 * warming. Doing the same in vigil_engine_warm for the timers a batch will
 * fire did not pay (bench_synth mix, 1 M keys: no change beyond noise). */
#include "engine_int.h"

int veng_timer_add(vigil_engine *eng, int64_t when, vkeystate *ks, int slot) {
    if (eng->ntimers == eng->captimers) {
        size_t cap = eng->captimers ? eng->captimers * 2 : 1024;
        vtimer *t = realloc(eng->timers, cap * sizeof *t);
        if (!t) return -1;
        eng->timers = t;
        eng->captimers = cap;
    }
    size_t i = eng->ntimers++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (eng->timers[parent].when <= when) break;
        eng->timers[i] = eng->timers[parent];
        i = parent;
    }
    eng->timers[i] = (vtimer){.when = when, .ks = ks, .slot = slot};
    ks->ntimers++;
    return 0;
}

static vtimer timer_pop(vigil_engine *eng) {
    vtimer top = eng->timers[0], last = eng->timers[--eng->ntimers];
    size_t i = 0, n = eng->ntimers;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && eng->timers[c + 1].when < eng->timers[c].when) c++;
        if (last.when <= eng->timers[c].when) break;
        eng->timers[i] = eng->timers[c];
        i = c;
    }
    if (n) eng->timers[i] = last;
    return top;
}

size_t veng_timers_due(const vigil_engine *eng, int64_t upto, vtimer *out, size_t max) {
    size_t q[2 * VENG_DUE_MAX + 2], qh = 0, qt = 0, n = 0;
    if (max > VENG_DUE_MAX) max = VENG_DUE_MAX;
    if (eng->ntimers) q[qt++] = 0;
    while (qh < qt && n < max) {
        size_t i = q[qh++];
        if (eng->timers[i].when > upto) continue;   /* nor are its children due */
        out[n++] = eng->timers[i];
        for (size_t c = 2 * i + 1; c <= 2 * i + 2 && c < eng->ntimers; c++) q[qt++] = c;
    }
    return n;
}

void veng_fire_timers(vigil_engine *eng, int64_t upto) {
    size_t left = 0;   /* timers to fire before the next look ahead */
    while (eng->ntimers && eng->timers[0].when <= upto) {
        if (!left) {   /* many due at once (a watermark jump, the end of input): fetch their states together */
            vtimer due[16];
            left = veng_timers_due(eng, upto, due, 16);
            for (size_t j = 0; left > 1 && j < left; j++) __builtin_prefetch(due[j].ks);
            for (size_t j = 0; left > 1 && j < left; j++)
                if (due[j].slot >= 0 && due[j].ks->rs[due[j].slot]) __builtin_prefetch(due[j].ks->rs[due[j].slot]);
        }
        if (left) left--;
        vtimer t = timer_pop(eng);
        t.ks->ntimers--;
        if (t.slot < 0 || !t.ks->rs[t.slot]) continue;   /* its state went with a hot reload, or ended */
        const vrule *r = &eng->rs->rules[eng->rs->groups[t.ks->group].rules[t.slot]];
        if (r->nsteps) vnfa_timer(eng, r, t.ks, t.ks->rs[t.slot], t.when);
        else vwin_timer(eng, r, t.ks, t.slot, t.ks->rs[t.slot], t.when);
        veng_mark_dirty(eng, t.ks);
    }
}

void veng_rearm(vigil_engine *eng, vkeystate *ks) {
    const vgroup *g = &eng->rs->groups[ks->group];
    for (int i = 0; i < g->nrules; i++) {
        const vrule *r = &eng->rs->rules[g->rules[i]];
        if (!r->nsteps) {   /* an open tumbling/session window closes at its end */
            if (ks->rs[i]) vwin_rearm(eng, r, ks, i, ks->rs[i]);
            continue;
        }
        const vpat *p = ks->rs[i];
        if (!r->within_ms || !p) continue;
        int64_t last = INT64_MIN;
        for (uint32_t j = 0; j < p->nruns; j++)   /* one timer per distinct start of a partial run */
            if (!p->runs[j].held && p->runs[j].start_ts != last) {
                last = p->runs[j].start_ts;
                veng_timer_add(eng, last + r->within_ms, ks, i);
            }
    }
}
