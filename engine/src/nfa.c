/* nfa.c — pattern matching: per (rule, key) partial matches ("runs").
 *
 * Semantics follow FlinkCEP's NFA (Flink docs, "FlinkCEP — Pattern API":
 * "Combining Patterns", "Looping patterns", "After Match Skip Strategy"),
 * itself SASE's (Agrawal et al., SIGMOD 2008): a run sits in a step having
 * taken `count` events there. On each event of its key a run may
 *   - TAKE it into its looping step (count < max, condition holds; a
 *     consecutive() loop only if the event is the very next of the key),
 *   - PROCEED to a later step and take it there (count >= min; optional
 *     steps may be skipped; next() needs the very next event of the key),
 *   - IGNORE it and stay, where contiguity allows: followed_by() is
 *     skip-till-next-match (a run ignores only events its next move cannot
 *     take), followed_by_any() is skip-till-any-match (it may always ignore),
 *     next() never ignores.
 * Every take makes a new run (branching); a new run starts at every event
 * that matches the first step (or, while the first steps are optional, a
 * later one). A run completes when the rest of the pattern
 * may be empty. With no_skip every completed run becomes an alert at once,
 * in order of (start event, longest first). With any other after-match skip
 * strategy a completed run is held, as FlinkCEP does
 * (NFA.processMatchesAccordingToSkipStrategy, NFAState's comparator): the
 * earliest held match is emitted, and applies the strategy to the other
 * runs and held matches, only once no partial run that started before it
 * is alive; see release(). `within` bounds last.ts - first.ts < within.
 * Runs per (rule, key), partial and held, are bounded by max_runs; the
 * oldest partial ones are evicted and counted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine_int.h"

void vrun_clear(vrun *r) {
    for (uint32_t i = 0; i < r->nev; i++) vigil_event_release(r->ev[i]);
    free(r->ev);   /* one allocation holds ev, evstep and evseq */
    memset(r, 0, sizeof *r);
}

static int run_reserve(vrun *r, uint32_t n) {
    if (n <= r->cap) return 0;
    uint32_t cap = r->cap ? r->cap * 2 : 4;
    while (cap < n) cap *= 2;
    size_t sz = (size_t)cap * (sizeof(vigil_event *) + sizeof(uint64_t) + 1);
    unsigned char *m = malloc(sz);
    if (!m) return -1;
    vigil_event **ev = (vigil_event **)m;
    uint64_t *seq = (uint64_t *)(ev + cap);
    uint8_t *st = (uint8_t *)(seq + cap);
    if (r->nev) {
        memcpy(ev, r->ev, r->nev * sizeof *ev);
        memcpy(seq, r->evseq, r->nev * sizeof *seq);
        memcpy(st, r->evstep, r->nev);
    }
    free(r->ev);
    r->ev = ev;
    r->evseq = seq;
    r->evstep = st;
    r->cap = cap;
    return 0;
}

/* A copy of `from` (or a fresh run) extended by ev at step `step`. */
static int run_extend(vrun *out, const vrun *from, vigil_event *ev, uint64_t seq, int step) {
    memset(out, 0, sizeof *out);
    uint32_t n = from ? from->nev : 0;
    if (run_reserve(out, n + 1) != 0) return -1;
    if (from) {
        for (uint32_t i = 0; i < n; i++) {
            out->ev[i] = from->ev[i];
            vigil_event_retain(out->ev[i]);
        }
        memcpy(out->evseq, from->evseq, n * sizeof *out->evseq);
        memcpy(out->evstep, from->evstep, n);
        out->start_ts = from->start_ts;
        out->start_seq = from->start_seq;
        out->count = from->step == step ? from->count + 1 : 1;
    } else {
        out->start_ts = ev->ts;
        out->start_seq = seq;
        out->count = 1;
    }
    vigil_event_retain(ev);
    out->ev[n] = ev;
    out->evseq[n] = seq;
    out->evstep[n] = (uint8_t)step;
    out->nev = n + 1;
    out->step = step;
    out->last_seq = seq;
    out->closed = 0;
    return 0;
}

static vrun *push(vrun **v, uint32_t *n, uint32_t *cap) {
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 16;
        vrun *nv = realloc(*v, c * sizeof *nv);
        if (!nv) return NULL;
        *v = nv;
        *cap = c;
    }
    return &(*v)[(*n)++];
}

/* The rest of the pattern after step j may match nothing. */
static int rest_optional(const vrule *r, int j) {
    for (int k = j + 1; k < r->nsteps; k++)
        if (!r->steps[k].negative && !r->steps[k].optional) return 0;
    return 1;
}

/* A run that has taken everything but a trailing not_followed_by: it
 * completes when `within` expires with no guard event seen. */
static int absence_pending(const vrule *r, const vrun *run) {
    return r->absence && run->count >= r->steps[run->step].min && rest_optional(r, run->step);
}

/* The run can still take more events after completing (keeps it alive). */
static int can_continue(const vrule *r, const vrun *run) {
    const vstep *st = &r->steps[run->step];
    return run->count < st->max || run->step + 1 < r->nsteps;
}

static int cond(const vstep *st, const veval *c) {
    int v = vexpr_true(st->cond, c);
    if (v && c->eng) c->eng->step_hits[(size_t)(c->rule - c->eng->rs->rules) * VIGIL_MAX_STEPS + (size_t)(st - c->rule->steps)]++;
    return v;
}

/* The step's stop_when holds (FlinkCEP's until): the loop takes no more. */
static int stops(const vstep *st, const veval *c) { return st->stop_when && vexpr_true(st->stop_when, c); }

static int run_copy(vrun *dst, const vrun *src) {
    *dst = *src;
    dst->ev = NULL;
    dst->cap = 0;
    dst->nev = 0;
    if (run_reserve(dst, src->nev) != 0) return -1;
    for (uint32_t i = 0; i < src->nev; i++) {
        dst->ev[i] = src->ev[i];
        vigil_event_retain(dst->ev[i]);
    }
    memcpy(dst->evseq, src->evseq, src->nev * sizeof *dst->evseq);
    memcpy(dst->evstep, src->evstep, src->nev);
    dst->nev = src->nev;
    return 0;
}

/* Record a derived run: a completed one goes to tmp_done, and stays a
 * partial run as well when it can still take events (a looping last step,
 * optional steps after it). */
static int derive(vigil_engine *eng, const vrule *r, const vrun *from, vigil_event *ev, uint64_t seq,
                  int step) {
    vrun nr;
    if (run_extend(&nr, from, ev, seq, step) != 0) return -1;
    int complete = !r->absence && nr.count >= r->steps[step].min && rest_optional(r, step);
    int partial = !complete || can_continue(r, &nr);
    if (complete) {
        vrun *d = push(&eng->tmp_done, &eng->ntmp_done, &eng->captmp_done);
        if (!d || (partial ? run_copy(d, &nr) : (*d = nr, 0)) != 0) {
            if (d) eng->ntmp_done--;
            vrun_clear(&nr);
            return -1;
        }
    }
    if (partial) {
        vrun *p = push(&eng->tmp_new, &eng->ntmp_new, &eng->captmp_new);
        if (!p) {
            vrun_clear(&nr);
            return -1;
        }
        *p = nr;
    }
    return 0;
}

/* Advance one run by one event. Returns 1 if the run itself survives
 * (possibly closed), 0 if it dies; -1 when out of memory.
 *
 * Where this follows FlinkCEP's compiled NFA rather than the simple reading:
 *  - a guard (not_next / not_followed_by) after a looping step watches from
 *    the loop's first event on, and a run whose guard saw its event dies (it
 *    cannot take more loop events either): FlinkCEP folds the negation into
 *    the loop state's ignore condition (NotPatternITCase
 *    testTimesWithNotFollowedBy, testNotNextAfterOneOrMoreSkipTillNext);
 *  - optional() makes a step skippable as a whole: times(2):optional() is
 *    zero or two events, never one (NFAITCase testTimesNonStrictOptional*);
 *  - skipping an optional step is its own branch: when the run takes the
 *    event at the optional step, a copy that skipped the step still waits
 *    at the step after it, if that step may ignore the event (NFAITCase
 *    testOptional: c a b gives c a b and c b);
 *  - greedy(): a loop that can take the event does not proceed with it, and
 *    the shorter run does not wait (GreedyITCase). */
static int advance(vigil_engine *eng, const vrule *r, vrun *run, vigil_event *ev, uint64_t seq,
                   const uint64_t *hits) {
    const vstep *st = &r->steps[run->step];
    int adjacent = seq == run->last_seq + 1;
    veval c = {.ev = ev, .run = run, .rule = r, .regex_hits = hits, .eng = eng};
    int first = run->from > run->step + 1 ? run->from : run->step + 1;
    /* guards between this step and the next positive one: not_next forbids
     * the very next event, not_followed_by every event until the next step
     * (or until `within` expires, for an absence) */
    int j = first;
    while (j < r->nsteps && r->steps[j].negative) j++;
    int next = j;
    for (int k = run->step + 1; k < next; k++) {   /* a branch that skipped optional steps keeps their guards */
        const vstep *g = &r->steps[k];
        if (g->negative && (g->contiguity == VIGIL_CONT_NOT_FOLLOWED_BY || adjacent) && cond(g, &c))
            return 0;   /* the guard saw its event: the run dies */
    }
    int took_loop = 0;
    if (!run->closed && run->count < st->max) {
        if (stops(st, &c)) {
            run->closed = 1;
        } else if ((!st->consecutive || adjacent) && cond(st, &c)) {
            if (derive(eng, r, run, ev, seq, run->step) != 0) return -1;
            took_loop = 1;
        }
    }
    /* The run stands for several FlinkCEP waiting states at once: its loop
     * (when it can take more) and each step it may proceed to (the next one,
     * and past it while steps are optional). Each state ignores or dies by
     * its own condition, and a state that ignored an event loses its way on
     * (FlinkCEP's "ignore" states have no PROCEED edge): a loop that ignored
     * cannot proceed until it takes again, an optional step that ignored
     * can no longer be skipped. While every state survives, the one run
     * still stands for them all; otherwise it splits into the survivors. */
    int active = run->count >= st->min && !run->noproceed && !(st->greedy && took_loop);
    int nchain = 0, nsurv = 0, absence_wait = 0;
    int surv[256];
    if (active) {
        if (next == r->nsteps && r->absence) absence_wait = 1;   /* waiting for the absence to complete */
        int stop_at_next = 0;
        for (; j < r->nsteps && !r->steps[j].negative; j++) {
            const vstep *sj = &r->steps[j];
            int took = 0, holds = cond(sj, &c);
            /* stop_when also refuses a loop's first event (FlinkCEP builds every
             * take of the step as "where and not until") */
            if ((sj->contiguity != VIGIL_CONT_STRICT || adjacent) && holds &&
                !stops(sj, &c)) {
                if (derive(eng, r, run, ev, seq, j) != 0) return -1;
                took = 1;
            }
            nchain++;
            /* a waiting state may ignore this event only as its own
             * contiguity allows: skip-till-next ignores only events its
             * condition rejects (one that stop_when refused is not ignored) */
            int may_ignore = sj->contiguity == VIGIL_CONT_NONDET || (sj->contiguity == VIGIL_CONT_RELAXED && !holds);
            if (may_ignore && !stop_at_next) surv[nsurv++] = j;
            if (j == next && took && sj->greedy) stop_at_next = 1;   /* a greedy step that takes is not skipped */
            if (!sj->optional || run->noskip) break;
        }
    }
    int loop_alive = !run->closed && run->count < st->max && !took_loop && !st->consecutive;
    int all = active && nsurv == nchain;
    if (absence_wait || (all && nchain > 0)) {   /* one run still stands for every state */
        if (!loop_alive) run->closed = 1;
        return 1;
    }
    if (!loop_alive && nsurv == 0) return 0;
    /* split: each surviving waiting state becomes a run of its own */
    int k = 0;
    if (!loop_alive) {   /* the run itself becomes the first survivor */
        run->closed = 1;
        run->from = (uint8_t)surv[0];
        run->noskip = r->steps[surv[0]].optional;
        k = 1;
    } else if (active) {
        run->noproceed = 1;   /* the loop ignored the event */
    }
    for (; k < nsurv; k++) {
        vrun *cp = push(&eng->tmp_new, &eng->ntmp_new, &eng->captmp_new);
        if (!cp) return -1;
        if (run_copy(cp, run) != 0) {
            eng->ntmp_new--;
            return -1;
        }
        cp->closed = 1;
        cp->noproceed = 0;
        cp->from = (uint8_t)surv[k];
        cp->noskip = r->steps[surv[k]].optional;
    }
    return 1;
}

static int cmp_done(const void *a, const void *b) {
    const vrun *x = a, *y = b;
    if (x->start_seq != y->start_seq) return x->start_seq < y->start_seq ? -1 : 1;
    if (x->nev != y->nev) return x->nev > y->nev ? -1 : 1;
    return 0;
}

/* Which runs the skip strategy discards after emitting match m: returns the
 * bound such that runs with start_seq < bound (or == for SKIP_TO_NEXT) go. */
static int pruned(const vrule *r, const vrun *m, const vrun *x) {
    switch (r->skip) {
    case VIGIL_SKIP_NO_SKIP: return 0;
    case VIGIL_SKIP_TO_NEXT: return x->start_seq == m->start_seq;
    case VIGIL_SKIP_PAST_LAST_EVENT: return x->start_seq <= m->last_seq;
    case VIGIL_SKIP_TO_FIRST:
    case VIGIL_SKIP_TO_LAST: {
        uint64_t bound = 0;
        int found = 0;
        for (uint32_t i = 0; i < m->nev; i++)
            if (m->evstep[i] == r->skip_step) {
                if (!found || r->skip == VIGIL_SKIP_TO_LAST) bound = m->evseq[i];
                found = 1;
            }
        return found && x->start_seq < bound;
    }
    }
    return 0;
}

vpat *vnfa_new(uint32_t n) {
    vpat *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->runs = &p->one;
    p->cap = 1;
    if (n > 1) {
        if (!(p->runs = calloc(n, sizeof *p->runs))) {
            free(p);
            return NULL;
        }
        p->cap = n;
    }
    return p;
}

/* Room for one more run in the key's runs: the inline one, then a
 * malloc'd array (4, doubling). */
static vrun *pat_push(vpat *p) {
    if (p->nruns == p->cap) {
        uint32_t c = p->cap < 4 ? 4 : p->cap * 2;
        vrun *nv;
        if (p->runs == &p->one) {
            if (!(nv = malloc(c * sizeof *nv))) return NULL;
            memcpy(nv, p->runs, p->nruns * sizeof *nv);
        } else if (!(nv = realloc(p->runs, c * sizeof *nv))) {
            return NULL;
        }
        p->runs = nv;
        p->cap = c;
    }
    return &p->runs[p->nruns++];
}

static void compact(vpat *p) {
    uint32_t w = 0;
    for (uint32_t i = 0; i < p->nruns; i++)
        if (p->runs[i].nev) p->runs[w++] = p->runs[i];
    p->nruns = w;
    if (w <= 1 && p->runs != &p->one) {   /* back to the inline run: the array goes */
        if (w) p->one = p->runs[0];
        free(p->runs);
        p->runs = &p->one;
        p->cap = 1;
    }
}

static void emit(vigil_engine *eng, const vrule *r, vkeystate *ks, vpat *p, const vrun *m, int64_t ts) {
    if (ts == INT64_MIN) ts = m->ev[m->nev - 1]->ts;
    if (r->suppress_ms && p->alerted && ts - p->last_alert_ts < r->suppress_ms) return;
    p->alerted = 1;
    p->last_alert_ts = ts;
    /* details: events per step */
    char det[1024];
    size_t off = (size_t)snprintf(det, sizeof det, "{\"steps\":{");
    for (int s = 0; s < r->nsteps && off < sizeof det - 80; s++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < m->nev; i++) n += m->evstep[i] == s;
        off += (size_t)snprintf(det + off, sizeof det - off, "%s\"%s\":%u", s ? "," : "", r->steps[s].name, n);
    }
    snprintf(det + off, sizeof det - off, "}}");
    veng_emit_match(eng, r, ks, m->ev, m->evstep, (int)m->nev, det, ts);
}

/* Emit the completed matches in tmp_done in order, each applying the skip
 * strategy to the rest and to the key's partial runs (no_skip: nothing is
 * held, nothing pruned). ts: the alerts' time (INT64_MIN: each match's last
 * event). */
static void emit_done(vigil_engine *eng, const vrule *r, vkeystate *ks, vpat *p, int64_t ts) {
    if (!eng->ntmp_done) return;
    qsort(eng->tmp_done, eng->ntmp_done, sizeof *eng->tmp_done, cmp_done);
    for (uint32_t i = 0; i < eng->ntmp_done; i++) {
        vrun *m = &eng->tmp_done[i];
        if (!m->nev) continue;   /* pruned by an earlier match */
        emit(eng, r, ks, p, m, ts == INT64_MIN ? INT64_MIN : m->start_ts + r->within_ms);
        for (uint32_t j = i + 1; j < eng->ntmp_done; j++)
            if (eng->tmp_done[j].nev && pruned(r, m, &eng->tmp_done[j])) vrun_clear(&eng->tmp_done[j]);
        for (uint32_t j = 0; j < p->nruns; j++)
            if (pruned(r, m, &p->runs[j])) vrun_clear(&p->runs[j]);
        vrun_clear(m);
    }
    eng->ntmp_done = 0;
    compact(p);
}

/* Held matches (any skip strategy but no_skip), FlinkCEP's queue of
 * completed matches (NFA.processMatchesAccordingToSkipStrategy, ordered by
 * NFAState.COMPUTATION_STATE_COMPARATOR: start event, here start_seq; then
 * longest first, cmp_done): the earliest is emitted while it started no later
 * than every partial run still alive, and prunes by the skip strategy both the
 * partial runs and the other held matches. The rest wait in p->runs, flagged
 * held, until the partial runs that started before them die: fail on an
 * event, expire by `within` (vnfa_timer) or are evicted by max_runs (bound).
 * Without `within` a match may so wait as long as its blocker lives. */

/* Move the completed matches of tmp_done into the key's runs, held. On
 * failure (out of memory) the ones not moved are dropped. */
static int hold_done(vigil_engine *eng, vpat *p) {
    for (uint32_t i = 0; i < eng->ntmp_done; i++) {
        vrun *d = pat_push(p);
        if (!d) {
            for (; i < eng->ntmp_done; i++) vrun_clear(&eng->tmp_done[i]);
            eng->ntmp_done = 0;
            return -1;
        }
        *d = eng->tmp_done[i];
        d->held = 1;
        p->nheld++;
    }
    eng->ntmp_done = 0;
    return 0;
}

/* Emit the held matches no partial run blocks, earliest first (ties: the
 * order they completed in). p must be compacted. The alert time is what it
 * would have been at once: the last event's, or for an absence first event
 * + within. */
static void release(vigil_engine *eng, const vrule *r, vkeystate *ks, vpat *p) {
    while (p->nheld) {
        uint32_t best = UINT32_MAX;
        uint64_t blocker = UINT64_MAX;   /* earliest start of a partial run */
        for (uint32_t i = 0; i < p->nruns; i++) {
            const vrun *x = &p->runs[i];
            if (!x->held) {
                if (x->start_seq < blocker) blocker = x->start_seq;
            } else if (best == UINT32_MAX || cmp_done(x, &p->runs[best]) < 0) {
                best = i;
            }
        }
        vrun *m = &p->runs[best];
        if (m->start_seq > blocker) break;
        emit(eng, r, ks, p, m, r->absence ? m->start_ts + r->within_ms : INT64_MIN);
        for (uint32_t j = 0; j < p->nruns; j++)
            if (j != best && pruned(r, m, &p->runs[j])) {
                p->nheld -= p->runs[j].held;
                vrun_clear(&p->runs[j]);
            }
        vrun_clear(m);
        p->nheld--;
        compact(p);
    }
}

/* Bound the key's runs by max_runs: while partial and held runs together
 * are too many, evict the oldest partial run (runs are appended in creation
 * order, so oldest starts come first except for branches: look for the
 * earliest start) and count it. An evicted blocker may let held matches go;
 * held matches themselves are never evicted. */
static void bound(vigil_engine *eng, const vrule *r, vkeystate *ks, vpat *p) {
    while (p->nruns > eng->o.max_runs && p->nruns > p->nheld) {
        uint32_t oldest = UINT32_MAX;
        for (uint32_t j = 0; j < p->nruns; j++)
            if (!p->runs[j].held && (oldest == UINT32_MAX || p->runs[j].start_seq < p->runs[oldest].start_seq))
                oldest = j;
        vrun_clear(&p->runs[oldest]);
        compact(p);
        eng->st.runs_evicted++;
        if (p->nheld) release(eng, r, ks, p);
    }
}

vigil_status vnfa_feed(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vpat **pp, vigil_event *ev,
                       uint64_t seq, const uint64_t *hits) {
    vpat *p = *pp;
    veval c = {.ev = ev, .rule = r, .regex_hits = hits, .eng = eng};
    /* a draining version (hot reload) finishes its runs and starts none.
     * A new run starts at the first step, or past it while the first steps
     * are optional (FlinkCEP: the start state's PROCEED edges; a run that
     * has taken nothing does not wait, so it starts only where the event
     * is taken: NFAITCase testStartWithOptional). starts: bit j, a run
     * starts taking the event at step j. */
    uint32_t starts = !r->draining && cond(&r->steps[0], &c) && !stops(&r->steps[0], &c);
    for (int j = 1; r->steps[j - 1].optional && j < r->nsteps && j < 32 && !r->draining && !r->steps[j].negative; j++)
        if (cond(&r->steps[j], &c) && !stops(&r->steps[j], &c)) starts |= 1u << j;
    if (!p) {
        if (!starts) return VIGIL_OK;
        if (!(p = vnfa_new(1))) return VIGIL_ENOMEM;
        *pp = p;
    }
    eng->ntmp_new = eng->ntmp_done = 0;
    /* existing runs, oldest first; held matches wait as they are */
    for (uint32_t i = 0; i < p->nruns; i++) {
        vrun *run = &p->runs[i];
        if (run->held) continue;
        if (r->within_ms && ev->ts - run->start_ts >= r->within_ms) {
            vrun_clear(run);
            continue;
        }
        int a = advance(eng, r, run, ev, seq, hits);
        if (a < 0) return VIGIL_ENOMEM;
        if (a == 0) vrun_clear(run);
    }
    compact(p);
    if (starts) {
        for (int j = 0; starts >> j; j++)
            if (starts >> j & 1 && derive(eng, r, NULL, ev, seq, j) != 0) return VIGIL_ENOMEM;
        /* one timer per new run: `within` expiry (pruning, absences) */
        if (r->within_ms && veng_timer_add(eng, ev->ts + r->within_ms, ks, slot) != 0) return VIGIL_ENOMEM;
    }
    /* new partial runs join the key's runs */
    for (uint32_t i = 0; i < eng->ntmp_new; i++) {
        vrun *d = pat_push(p);
        if (!d) return VIGIL_ENOMEM;
        *d = eng->tmp_new[i];
    }
    eng->ntmp_new = 0;
    if (r->skip == VIGIL_SKIP_NO_SKIP) emit_done(eng, r, ks, p, INT64_MIN);
    else if (hold_done(eng, p) != 0) return VIGIL_ENOMEM;
    if (p->nheld) release(eng, r, ks, p);
    bound(eng, r, ks, p);
    return VIGIL_OK;
}

void vnfa_timer(vigil_engine *eng, const vrule *r, vkeystate *ks, vpat *p, int64_t wm) {
    if (!p || !r->within_ms) return;
    eng->ntmp_done = 0;
    for (uint32_t i = 0; i < p->nruns; i++) {
        vrun *run = &p->runs[i];
        if (run->held || wm - run->start_ts < r->within_ms) continue;
        if (absence_pending(r, run)) {   /* nothing came to negate it: a match */
            vrun *d = push(&eng->tmp_done, &eng->ntmp_done, &eng->captmp_done);
            if (d) {
                *d = *run;
                memset(run, 0, sizeof *run);
                continue;
            }
        }
        vrun_clear(run);
    }
    compact(p);
    /* absence alerts: ts = first event + within; expired runs may let held matches go */
    if (r->skip == VIGIL_SKIP_NO_SKIP) emit_done(eng, r, ks, p, 0);
    else hold_done(eng, p);   /* out of memory: the absence matches are lost */
    if (p->nheld) release(eng, r, ks, p);
}

void vnfa_warm(const vpat *p) {
    if (p->nruns) __builtin_prefetch(p->runs);
}

void vnfa_free(vpat *p) {
    if (!p) return;
    for (uint32_t i = 0; i < p->nruns; i++) vrun_clear(&p->runs[i]);
    if (p->runs != &p->one) free(p->runs);
    free(p);
}
