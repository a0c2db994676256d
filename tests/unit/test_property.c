/* test_property.c — property test of the pattern matcher (engine/src/nfa.c):
 * on random patterns and random event streams, the engine's alerts must equal
 * the matches of a brute-force enumerator written here from FlinkCEP's
 * definitions, independently of nfa.c.
 *
 * A trial draws a pattern rule and an event stream from a seeded PRNG,
 * compiles the rule from DSL text (vigil_rules_load_string), decodes the
 * events from JSON, feeds them (vigil_engine_feed, max_runs 100000 so that
 * eviction never interferes; a trial that evicts anyway is skipped and
 * counted) and ends with vigil_engine_advance(INT64_MAX). Each alert (its
 * `events` ids, the step that took each of them — details.steps — and the
 * event being fed when it came) must be the next match the enumerator
 * expects. A failure prints the seed, a shrunk reproducer (events removed
 * while it still fails) and both sides.
 * Seeds: trial i runs seed VIGIL_PROPERTY_SEED + i (default 20260101) for
 * VIGIL_PROPERTY_TRIALS trials (default 500, 2-3 s under ASan); replay
 * one with VIGIL_PROPERTY_SEED=<seed> VIGIL_PROPERTY_TRIALS=1 (same
 * known_divergences list). VIGIL_PROPERTY_KNOWN=1 generates the known
 * divergences too (below) and tallies the failures by divergence. A second
 * test checks the enumerator alone against FlinkCEP's own expected results
 * (NFAITCase).
 *
 * Generated: 1-4 steps, each `where{ type = <letter> [, v = gt|ge|lt|le|
 * between] }`; steps after the first `next`, `followed_by` or
 * `followed_by_any`; quantifier none, times(n) (n 1..3), times(n, m),
 * one_or_more(), times_or_more(n) (n 1..3); optional() (on the first step
 * too: a match may then start at a later step); consecutive() on
 * looping steps; stop_when{ type and/or v } on unbounded loops; within
 * 2-15 s or none; all five skip strategies. Streams: 5-30 events, 1-3 keys,
 * strictly increasing ts (1-3 s apart), types over 2-4 letters, `v` 0..9 or
 * missing (10%). Not generated: not_next / not_followed_by / absences,
 * or_where, ref(), greedy() (no effect yet), regexes and lists (the
 * enumerator treats predicates as black boxes; test_dsl.c covers them).
 *
 * The definitions (FlinkCEP's compiled NFA: NFACompiler, NFA.computeNextStates;
 * the Flink docs, "Pattern API", describe it by example). A step with
 * quantifier [lo, hi] (hi may be unbounded) is a chain of states "k-th event
 * of the step". While it waits, the state of a step's 1st event ignores what
 * the step's contiguity lets it: next nothing, followed_by every event its
 * condition rejects (skip-till-next-match), followed_by_any every event
 * (skip-till-any-match); the state of the k-th event, k >= 2, uses the loop's
 * inner contiguity: nothing with consecutive(), else every event the
 * condition rejects and stop_when does not match. After a take, a run waits
 * in several states at once: the loop's next one and, through optional
 * steps, the first state of each following step up to the first mandatory
 * one (NFA.createDecisionGraph follows each one's IGNORE edge); once it has
 * ignored an event in a state it can only take that state's event (the
 * ignore states NFACompiler builds have no PROCEED edge). So a match of one
 * key's events is an increasing sequence of events, each labelled (step, k):
 *   - labels follow the chain: (j, k) then (j, k + 1) with k < hi_j, or
 *     (j', 1) with j' > j, k >= lo_j and each step between j and j'
 *     optional; it starts at (0, 1) and ends at some (j, k) with k >= lo_j
 *     and each later step optional (optional() with times(n[, m]) is 0 or
 *     n..m events: NFACompiler.createTimesState makes only the chain's first
 *     state optional);
 *   - each event meets its step's where{} and not its stop_when{} (FlinkCEP's
 *     until: every take condition of the step is where AND NOT until);
 *   - each event strictly between two consecutive matched events meets the
 *     ignore condition of the second one's state;
 *   - last.ts - first.ts < within.
 * Reporting, as FlinkCEP's NFA.processMatchesAccordingToSkipStrategy (and
 * NFA.advanceTime): with no_skip a match is reported when its last event
 * arrives. With any other skip strategy a completed match is held until no
 * partial match that started before it is alive: one whose waiting states
 * did not all die on the key's events so far (enumctx.alive), that was not
 * pruned, and whose first event + within the watermark has not passed (the
 * watermark is the time of the event being fed, of any key: it moves before
 * the event is matched; infinite after the last event). Matches reported
 * together come by earliest first event, then longest (docs/rules.md
 * "Order of matches"); among matches equal in both any order is accepted.
 * Each reported match applies the skip strategy to the partial and
 * completed matches not reported yet: no_skip nothing; skip_to_next drops
 * those with the same first event; skip_past_last_event those whose first
 * event is at or before the reported match's last; skip_to_first(s) /
 * skip_to_last(s) those whose first event is before the first / last event
 * step s took (nothing when s took none). Without within a blocking partial
 * match may wait to the end: the matches it holds are never reported. The
 * summary counts the alerts that came after the event completing them and
 * the matches left held.
 *
 * known_divergences[] lists the pattern shapes where the engine and these
 * definitions disagree and the engine is believed wrong, each with a
 * reproducer; such patterns are redrawn (unless VIGIL_PROPERTY_KNOWN=1).
 * Remove an entry when the engine is fixed: VIGIL_PROPERTY_KNOWN=1 then shows
 * no failure for it.
 *
 * A third test does the same for sliding windows with stragglers (below:
 * "sliding windows with stragglers vs a brute-force window"). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <CUnit/Basic.h>
#include "vigil/engine.h"
#include "vigil/rules.h"

#define MAXSTEPS 4
#define MAXEV 30
#define UNBOUNDED 1000
#define MAX_MATCHES 100000   /* a trial with more (rare) is skipped, not failed */

/* ---- PRNG (splitmix64): the same seed gives the same trial everywhere ---- */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int lo, int hi) { return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1)); }
static int rng_pct(uint64_t *s, int pct) { return (int)(rng_next(s) % 100) < pct; }

/* ---- the model: patterns, events ---- */

typedef enum { V_NONE, V_GT, V_GE, V_LT, V_LE, V_BETWEEN } vop;
typedef struct {
    char type;   /* 0: no type condition */
    vop op;
    int a, b;
} pred;

enum { C_NEXT, C_FOLLOWED_BY, C_FOLLOWED_BY_ANY };
enum { Q_ONE, Q_TIMES, Q_RANGE, Q_ONE_OR_MORE, Q_OR_MORE };
enum { S_NO_SKIP, S_TO_NEXT, S_PAST_LAST, S_TO_FIRST, S_TO_LAST };

typedef struct {
    pred cond;
    int cont;                 /* ignored for the first step */
    int quant, n, m;          /* times(n) / times(n, m) / times_or_more(n) */
    int lo, hi;               /* events once the step is entered; hi = UNBOUNDED */
    int optional, consecutive, has_until;
    pred until;               /* stop_when{} */
} pstep;

typedef struct {
    int nsteps;
    pstep st[MAXSTEPS];
    int within;               /* seconds; 0: none */
    int skip, skip_step;
    int alpha;                /* event types are 'a'.. 'a' + alpha - 1 */
} pattern;

typedef struct {
    int key, ts;              /* ts in seconds */
    char type;
    int has_v, v;
    int id;                   /* "e<id>", unique within the trial */
} event;

typedef struct {
    int n;
    event ev[MAXEV];
} stream;

static int pred_holds(const pred *p, const event *e) {
    if (p->type && e->type != p->type) return 0;
    if (p->op == V_NONE) return 1;
    if (!e->has_v) return 0;   /* a comparison with a missing field is false */
    switch (p->op) {
    case V_GT: return e->v > p->a;
    case V_GE: return e->v >= p->a;
    case V_LT: return e->v < p->a;
    case V_LE: return e->v <= p->a;
    case V_BETWEEN: return e->v >= p->a && e->v <= p->b;
    case V_NONE: break;
    }
    return 1;
}

/* ---- DSL text ---- */

typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) abort();
        b->s = ns;
        b->cap = cap;
    }
}

static void pred_lua(sbuf *b, const pred *p) {
    sb_add(b, "{");
    if (p->type) sb_add(b, "type='%c'%s", p->type, p->op != V_NONE ? "," : "");
    switch (p->op) {
    case V_GT: sb_add(b, "v=gt(%d)", p->a); break;
    case V_GE: sb_add(b, "v=ge(%d)", p->a); break;
    case V_LT: sb_add(b, "v=lt(%d)", p->a); break;
    case V_LE: sb_add(b, "v=le(%d)", p->a); break;
    case V_BETWEEN: sb_add(b, "v=between(%d,%d)", p->a, p->b); break;
    case V_NONE: break;
    }
    sb_add(b, "}");
}

static void rule_lua(sbuf *b, const pattern *p) {
    static const char *const skips[] = {"'no_skip'", "'skip_to_next'", "'skip_past_last_event'"};
    static const char *const conts[] = {"next", "followed_by", "followed_by_any"};
    sb_add(b, "rule{name='p',key='k',skip=");
    if (p->skip == S_TO_FIRST || p->skip == S_TO_LAST)
        sb_add(b, "%s('s%d')", p->skip == S_TO_FIRST ? "skip_to_first" : "skip_to_last", p->skip_step);
    else
        sb_add(b, "%s", skips[p->skip]);
    if (p->within) sb_add(b, ",within='%ds'", p->within);
    sb_add(b, ",\n  pattern=");
    for (int j = 0; j < p->nsteps; j++) {
        const pstep *s = &p->st[j];
        if (j == 0) sb_add(b, "begin('s0')");
        else sb_add(b, "\n    :%s('s%d')", conts[s->cont], j);
        sb_add(b, ":where");
        pred_lua(b, &s->cond);
        switch (s->quant) {
        case Q_TIMES: sb_add(b, ":times(%d)", s->n); break;
        case Q_RANGE: sb_add(b, ":times(%d,%d)", s->n, s->m); break;
        case Q_ONE_OR_MORE: sb_add(b, ":one_or_more()"); break;
        case Q_OR_MORE: sb_add(b, ":times_or_more(%d)", s->n); break;
        default: break;
        }
        if (s->optional) sb_add(b, ":optional()");
        if (s->consecutive) sb_add(b, ":consecutive()");
        if (s->has_until) {
            sb_add(b, ":stop_when");
            pred_lua(b, &s->until);
        }
    }
    sb_add(b, "}\n");
}

static void event_json(sbuf *b, const event *e) {
    sb_add(b, "{\"id\":\"e%d\",\"k\":\"k%d\",\"ts\":%d,\"type\":\"%c\"", e->id, e->key, e->ts, e->type);
    if (e->has_v) sb_add(b, ",\"v\":%d", e->v);
    sb_add(b, "}");
}

/* ---- generation ---- */

static void gen_pred(uint64_t *r, pred *p, int alpha, int need_type) {
    memset(p, 0, sizeof *p);
    if (need_type || rng_pct(r, 50)) p->type = (char)('a' + rng_int(r, 0, alpha - 1));
    if (!p->type || rng_pct(r, 30)) {
        p->op = (vop)rng_int(r, V_GT, V_BETWEEN);
        p->a = rng_int(r, 0, 9);
        p->b = p->op == V_BETWEEN ? rng_int(r, p->a, 9) : 0;
    }
}

static void gen_pattern(uint64_t *r, pattern *p, int alpha) {
    memset(p, 0, sizeof *p);
    p->alpha = alpha;
    p->nsteps = rng_int(r, 1, MAXSTEPS);
    for (int j = 0; j < p->nsteps; j++) {
        pstep *s = &p->st[j];
        gen_pred(r, &s->cond, alpha, 1);
        s->cont = rng_int(r, C_NEXT, C_FOLLOWED_BY_ANY);
        int q = rng_int(r, 0, 9);
        s->quant = q < 4 ? Q_ONE : q < 6 ? Q_TIMES : q < 7 ? Q_RANGE : q < 8 ? Q_ONE_OR_MORE : Q_OR_MORE;
        switch (s->quant) {
        case Q_ONE: s->lo = s->hi = 1; break;
        case Q_TIMES: s->n = rng_int(r, 1, 3); s->lo = s->hi = s->n; break;
        case Q_RANGE:
            s->n = rng_int(r, 1, 2);
            s->m = rng_int(r, s->n + 1, 3);
            s->lo = s->n;
            s->hi = s->m;
            break;
        case Q_ONE_OR_MORE: s->lo = 1; s->hi = UNBOUNDED; break;
        default: s->n = rng_int(r, 1, 3); s->lo = s->n; s->hi = UNBOUNDED; break;
        }
        if (j > 0) {
            s->optional = rng_pct(r, 25);
        } else {   /* drawn from a copy: the trials of before keep their streams */
            uint64_t r2 = *r ^ 0x6f7074u;
            s->optional = rng_pct(&r2, 20);
        }
        s->consecutive = s->hi > 1 && rng_pct(r, 35);
        if (s->hi == UNBOUNDED && rng_pct(r, 25)) {
            s->has_until = 1;
            gen_pred(r, &s->until, alpha, 0);
        }
    }
    if (rng_pct(r, 40)) p->within = rng_int(r, 2, 15);
    int k = rng_int(r, 0, 19);
    p->skip = k < 7 ? S_NO_SKIP : k < 14 ? S_PAST_LAST : k < 16 ? S_TO_NEXT : k < 18 ? S_TO_FIRST : S_TO_LAST;
    p->skip_step = rng_int(r, 0, p->nsteps - 1);
}

static void gen_stream(uint64_t *r, stream *s, int alpha) {
    s->n = rng_int(r, 5, MAXEV);
    int nkeys = rng_pct(r, 40) ? 1 : rng_int(r, 2, 3), ts = rng_int(r, 1, 5);
    for (int i = 0; i < s->n; i++) {
        event *e = &s->ev[i];
        e->id = i;
        e->key = rng_int(r, 1, nkeys);
        e->ts = ts;
        ts += rng_int(r, 1, 3);
        e->type = (char)('a' + rng_int(r, 0, alpha - 1));
        e->has_v = !rng_pct(r, 10);
        e->v = e->has_v ? rng_int(r, 0, 9) : 0;
    }
}

/* ---- the reference: enumerate every match of one key's events ---- */

typedef struct {
    int first, last;          /* key-local positions */
    int n;
    uint8_t pos[MAXEV];       /* key-local positions of the matched events */
    uint8_t step[MAXEV];      /* the step that took each */
} match;

typedef struct {
    match *v;
    int n, cap;
    int overflow;
} matches;

typedef struct {
    const pattern *p;
    const event *ev[MAXEV];   /* the key's events in order */
    int n;
    matches *out;
    int *alive;               /* per first event: the last position at which a partial match
                                 starting there still waits (-1: none); see report() */
    uint8_t pos[MAXEV], step[MAXEV];
} enumctx;

/* The state taking the k-th event of step j takes e. */
static int takes(const pstep *s, const event *e) {
    return pred_holds(&s->cond, e) && !(s->has_until && pred_holds(&s->until, e));
}

/* The state taking the k-th event of step j may ignore e while it waits. */
static int ignores(const pstep *s, int k, const event *e) {
    if (k == 1) {
        if (s->cont == C_NEXT) return 0;
        if (s->cont == C_FOLLOWED_BY) return !pred_holds(&s->cond, e);
        return 1;
    }
    if (s->consecutive) return 0;
    return !pred_holds(&s->cond, e) && !(s->has_until && pred_holds(&s->until, e));
}

/* Having taken k events in step j, the pattern may end here. */
static int complete(const pattern *p, int j, int k) {
    if (k < p->st[j].lo) return 0;
    for (int i = j + 1; i < p->nsteps; i++)
        if (!p->st[i].optional) return 0;
    return 1;
}

/* ---- known divergences: pattern shapes where the engine and the
 * definitions above disagree and the engine is believed wrong (found by this
 * test). None is known today: the two this test found (stop_when on a
 * loop's first event; one run standing for waiting states FlinkCEP drops)
 * were fixed in engine/src/nfa.c. Such patterns are redrawn unless
 * VIGIL_PROPERTY_KNOWN=1. The predicates reason over every event the
 * generator can produce (each type of the alphabet, v missing or 0..9), so
 * a pattern is excluded only if some event could set the two apart; the
 * reproducers use no_skip and one key. ---- */

static __attribute__((unused)) int event_space(const pattern *p, event *out) {
    int n = 0;
    for (int t = 0; t < p->alpha; t++)
        for (int v = -1; v <= 9; v++) {
            memset(&out[n], 0, sizeof out[n]);
            out[n].type = (char)('a' + t);
            out[n].has_v = v >= 0;
            out[n].v = v < 0 ? 0 : v;
            n++;
        }
    return n;
}

typedef struct {
    const char *name;
    int (*applies)(const pattern *p);
} known_divergence;

static const known_divergence known_divergences[] = {
    {NULL, NULL},
};

static const known_divergence *known_for(const pattern *p) {
    for (const known_divergence *k = known_divergences; k->name; k++)
        if (k->applies(p)) return k;
    return NULL;
}

static void record(enumctx *c, int depth) {
    matches *m = c->out;
    if (m->n >= MAX_MATCHES) {
        m->overflow = 1;
        return;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 64;
        match *nv = realloc(m->v, (size_t)cap * sizeof *nv);
        if (!nv) abort();
        m->v = nv;
        m->cap = cap;
    }
    match *x = &m->v[m->n++];
    x->n = depth;
    memcpy(x->pos, c->pos, (size_t)depth);
    memcpy(x->step, c->step, (size_t)depth);
    x->first = c->pos[0];
    x->last = c->pos[depth - 1];
}

/* `depth` events matched, the last at position p in state (j, k). */
static void dfs(enumctx *c, int depth, int p, int j, int k) {
    const pattern *pat = c->p;
    if (c->out->overflow) return;
    int alive = -1;
    /* the next state: (j, k + 1), or the first of a later step */
    for (int tj = j; tj < pat->nsteps; tj++) {
        int tk;
        if (tj == j) {
            if (k >= pat->st[j].hi) continue;
            tk = k + 1;
        } else {
            if (k < pat->st[j].lo) break;
            /* every step strictly between j and tj is optional */
            int ok = 1;
            for (int i = j + 1; i < tj; i++) ok &= pat->st[i].optional;
            if (!ok) break;
            tk = 1;
        }
        const pstep *s = &pat->st[tj];
        int last = p;   /* this waiting state survives the events up to `last` */
        for (int q = p + 1; q < c->n; q++) {
            const event *e = c->ev[q];
            if (pat->within && e->ts - c->ev[c->pos[0]]->ts >= pat->within) break;
            if (takes(s, e)) {
                c->pos[depth] = (uint8_t)q;
                c->step[depth] = (uint8_t)tj;
                if (complete(pat, tj, tk)) record(c, depth + 1);
                dfs(c, depth + 1, q, tj, tk);
            }
            if (!ignores(s, tk, e)) break;
            last = q;
        }
        if (last > alive) alive = last;
    }
    if (alive > c->alive[c->pos[0]]) c->alive[c->pos[0]] = alive;
}

/* A match starts at (0, 1), or, while the first steps are optional, at
 * (j, 1) of a later one (the start state's PROCEED edges; it takes its
 * first event where it starts, NFAITCase testStartWithOptional). */
static void enumerate(enumctx *c) {
    for (int q = 0; q < c->n; q++)
        for (int j = 0; j < c->p->nsteps; j++) {
            if (takes(&c->p->st[j], c->ev[q])) {
                c->pos[0] = (uint8_t)q;
                c->step[0] = (uint8_t)j;
                if (complete(c->p, j, 1)) record(c, 1);
                dfs(c, 1, q, j, 1);
            }
            if (!c->p->st[j].optional) break;
        }
}

static int cmp_match(const void *a, const void *b) {
    const match *x = a, *y = b;
    if (x->last != y->last) return x->last - y->last;
    if (x->first != y->first) return x->first - y->first;
    if (x->n != y->n) return y->n - x->n;
    int c = memcmp(x->pos, y->pos, (size_t)x->n);
    return c ? c : memcmp(x->step, y->step, (size_t)x->n);
}

/* ---- the engine side ---- */

typedef struct {
    int key;
    int at;                   /* index of the event being fed when it came; -1: during advance */
    int n;
    int ids[MAXEV + 8];
    int cnt[MAXSTEPS];
    int bad;                  /* malformed (too many events, unknown id, bad details) */
} ealert;

typedef struct {
    ealert *v;
    int n, cap;
    int at;
} ealerts;

static void on_alert(void *ud, const vigil_alert *a) {
    ealerts *g = ud;
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        ealert *nv = realloc(g->v, (size_t)cap * sizeof *nv);
        if (!nv) abort();
        g->v = nv;
        g->cap = cap;
    }
    ealert *x = &g->v[g->n++];
    memset(x, 0, sizeof *x);
    x->at = g->at;
    x->key = a->key && a->key[0] == 'k' ? (int)strtol(a->key + 1, NULL, 10) : -1;
    if (a->nevents > (int)(sizeof x->ids / sizeof x->ids[0]) || a->events_truncated) x->bad = 1;
    for (int i = 0; i < a->nevents && !x->bad; i++) {
        char *end = NULL;
        if (a->events[i][0] != 'e') {
            x->bad = 1;
            break;
        }
        long v = strtol(a->events[i] + 1, &end, 10);
        if (*end || v < 0 || v >= MAXEV) x->bad = 1;
        else x->ids[x->n++] = (int)v;
    }
    /* details: {"steps":{"s0":2,"s1":1}} */
    const char *d = a->details_json;
    for (int s = 0; s < MAXSTEPS; s++) {
        char name[16];
        snprintf(name, sizeof name, "\"s%d\":", s);
        const char *f = d ? strstr(d, name) : NULL;
        x->cnt[s] = f ? (int)strtol(f + strlen(name), NULL, 10) : 0;
    }
}

typedef struct {
    ealerts got;
    matches ref[4];           /* per key 1..3 */
    const event *kev[4][MAXEV];
    int kn[4];
    int kpos[MAXEV];          /* event id -> key-local position */
    int kkey[MAXEV];          /* event id -> key */
    int alive[4][MAXEV];      /* per key and first event: see enumctx.alive */
    long held;                /* alerts reported after the event that completed them (compare) */
    long held_end;            /* of which at the end of input */
    long held_forever;        /* completed matches never reported: still held at the end */
    int compile_failed;
    int too_big;
    char why[2048];
} trial_result;

static void result_free(trial_result *t) {
    free(t->got.v);
    for (int k = 0; k < 4; k++) free(t->ref[k].v);
    memset(t, 0, sizeof *t);
}

/* Does engine alert a equal reference match m (events and their steps)? */
static int same(const trial_result *t, int key, const ealert *a, const match *m) {
    if (a->n != m->n) return 0;
    int cnt[MAXSTEPS] = {0};
    for (int i = 0; i < m->n; i++) {
        if (t->kkey[a->ids[i]] != key || t->kpos[a->ids[i]] != m->pos[i]) return 0;
        cnt[m->step[i]]++;
    }
    return memcmp(cnt, a->cnt, sizeof cnt) == 0;
}

/* The model's state of one key while compare() walks the stream. */
typedef struct {
    uint8_t killed[MAXEV];    /* partial and completed matches starting here were pruned */
    uint8_t *used;            /* per reference match: reported */
    int ndone;                /* reference matches (sorted by last event) completed so far */
    int q;                    /* key-local position of the key's last event so far; -1: none */
    int *mine, nmine, ai;     /* the engine's alerts of this key, and the next one to compare */
} kmodel;

/* Report what key `key` may report now: while the earliest completed match
 * not reported nor pruned (first event, then longest) starts no later than
 * every partial match still alive (with no_skip: at once), the engine's next
 * alert of the key must be it (or one equal in both), coming at `at` (an
 * event id, -1: the final advance); then the skip strategy prunes. A partial
 * match starting at f is alive when f <= q, it was not pruned, one of its
 * waiting states survived the key's events up to q (alive[f] >= q) and the
 * watermark wm has not passed its first event + within. Returns 0, or 1 with
 * t->why. */
static int report(trial_result *t, const pattern *p, kmodel *km, int key, int at, long long wm) {
    const matches *ref = &t->ref[key];
    for (;;) {
        int blocker = MAXEV;
        for (int f = 0; f <= km->q && blocker == MAXEV; f++)
            if (!km->killed[f] && t->alive[key][f] >= km->q &&
                !(p->within && (long long)t->kev[key][f]->ts + p->within <= wm))
                blocker = f;
        int best = -1;
        for (int i = 0; i < km->ndone; i++) {
            const match *m = &ref->v[i];
            if (km->used[i] || km->killed[m->first]) continue;
            if (best < 0 || m->first < ref->v[best].first || (m->first == ref->v[best].first && m->n > ref->v[best].n))
                best = i;
        }
        if (best < 0 || (p->skip != S_NO_SKIP && ref->v[best].first > blocker)) return 0;
        const match *bm = &ref->v[best];
        if (km->ai >= km->nmine) {
            snprintf(t->why, sizeof t->why, "key k%d: missing alert at %s%d (expected e.g. the match starting at e%d, "
                     "%d events, completed by e%d)", key, at < 0 ? "advance" : "e", at < 0 ? 0 : at,
                     t->kev[key][bm->first]->id, bm->n, t->kev[key][bm->last]->id);
            return 1;
        }
        const ealert *a = &t->got.v[km->mine[km->ai]];
        int hit = -1;
        if (!a->bad && a->at == at)
            for (int i = 0; i < km->ndone && hit < 0; i++)
                if (!km->used[i] && !km->killed[ref->v[i].first] && ref->v[i].first == bm->first && ref->v[i].n == bm->n &&
                    same(t, key, a, &ref->v[i]))
                    hit = i;
        if (hit < 0) {
            snprintf(t->why, sizeof t->why, "key k%d: alert #%d (came at %s%d) is not the next expected one: "
                     "expected at %s%d a match starting at e%d with %d events, completed by e%d", key, km->ai + 1,
                     a->at < 0 ? "advance" : "e", a->at < 0 ? 0 : a->at, at < 0 ? "advance" : "e", at < 0 ? 0 : at,
                     t->kev[key][bm->first]->id, bm->n, t->kev[key][bm->last]->id);
            return 1;
        }
        km->used[hit] = 1;
        km->ai++;
        const match *em = &ref->v[hit];
        if (at != t->kev[key][em->last]->id) {   /* it waited for earlier partial matches to end */
            t->held++;
            t->held_end += at < 0;
        }
        switch (p->skip) {
        case S_NO_SKIP: break;
        case S_TO_NEXT: km->killed[em->first] = 1; break;
        case S_PAST_LAST:
            for (int i = 0; i <= em->last; i++) km->killed[i] = 1;
            break;
        default: {
            int bound = -1;
            for (int i = 0; i < em->n; i++)
                if (em->step[i] == p->skip_step) {
                    if (bound < 0 || p->skip == S_TO_LAST) bound = em->pos[i];
                }
            for (int i = 0; i < bound; i++) km->killed[i] = 1;
        }
        }
    }
}

/* Walk the stream as the engine saw it. At each event the watermark moves
 * to its time first: partial matches of every key whose first event +
 * within it passed end, which may let completed matches go (FlinkCEP's
 * NFA.advanceTime before processing the event); then the event's key gets
 * the matches it completes, and reports (report()). At the end the watermark
 * goes to infinity: with `within` every partial match ends; without, the
 * held matches stay held (never reported). Returns 0 when the engine's
 * alerts are exactly the reported ones, in order, else 1 with t->why. */
static int compare(trial_result *t, const pattern *p, const stream *s) {
    kmodel km[4];
    int rc = 0;
    memset(km, 0, sizeof km);
    for (int k = 1; k <= 3; k++) {
        km[k].q = -1;
        km[k].used = calloc((size_t)t->ref[k].n + 1, 1);
        km[k].mine = malloc(((size_t)t->got.n + 1) * sizeof *km[k].mine);
        if (!km[k].used || !km[k].mine) abort();
        for (int i = 0; i < t->got.n; i++)
            if (t->got.v[i].key == k) km[k].mine[km[k].nmine++] = i;
    }
    for (int i = 0; i <= s->n && !rc; i++) {
        int at = i < s->n ? s->ev[i].id : -1;
        long long wm = i < s->n ? s->ev[i].ts : (long long)1 << 62;
        for (int k = 1; k <= 3 && !rc; k++) rc = report(t, p, &km[k], k, at, wm);
        if (rc || i == s->n) break;
        int key = s->ev[i].key;
        kmodel *m = &km[key];
        m->q = t->kpos[s->ev[i].id];
        while (m->ndone < t->ref[key].n && t->ref[key].v[m->ndone].last == m->q) m->ndone++;
        rc = report(t, p, m, key, at, wm);
    }
    for (int k = 1; k <= 3; k++) {
        if (!rc && km[k].ai < km[k].nmine) {
            const ealert *a = &t->got.v[km[k].mine[km[k].ai]];
            snprintf(t->why, sizeof t->why, "key k%d: unexpected alert #%d (came at %s%d, %d events)", k,
                     km[k].ai + 1, a->at < 0 ? "advance" : "e", a->at < 0 ? 0 : a->at, a->n);
            rc = 1;
        }
        for (int i = 0; !rc && i < t->ref[k].n; i++)   /* completed, never pruned: held for good */
            t->held_forever += !km[k].used[i] && !km[k].killed[t->ref[k].v[i].first];
        free(km[k].used);
        free(km[k].mine);
    }
    return rc;
}

/* Run one (pattern, stream) through the engine and the enumerator.
 * Returns 0 when they agree, 1 when not (t->why says where), -1 when the
 * trial cannot be judged (t->too_big / t->compile_failed). */
static int run_trial(const pattern *p, const stream *s, trial_result *t) {
    memset(t, 0, sizeof *t);
    sbuf src = {0};
    rule_lua(&src, p);
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0;
    if (vigil_rules_load_string("prop.lua", src.s, src.len, NULL, &rs, errs, 2, &nerrs) != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&errs[0], buf, sizeof buf);
        snprintf(t->why, sizeof t->why, "rule did not compile: %s", buf);
        free(src.s);
        t->compile_failed = 1;
        return 1;
    }
    free(src.s);
    vigil_engine_opts o = {.max_runs = 100000, .max_alert_events = 1000, .max_evidence = 1};
    vigil_engine *eng = vigil_engine_create(rs, &o, NULL, on_alert, &t->got);
    if (!eng) abort();
    for (int i = 0; i < s->n; i++) {
        sbuf js = {0};
        event_json(&js, &s->ev[i]);
        vigil_event *ev = NULL;
        vigil_error err;
        if (vigil_event_decode_json(rs, NULL, js.s, js.len, NULL, 1, &ev, &err) != VIGIL_OK) abort();
        free(js.s);
        t->got.at = s->ev[i].id;
        vigil_status st = vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
        if (st != VIGIL_OK) {
            snprintf(t->why, sizeof t->why, "feed failed: %s", vigil_status_str(st));
            vigil_engine_destroy(eng);
            vigil_ruleset_release(rs);
            return 1;
        }
    }
    t->got.at = -1;
    vigil_engine_advance(eng, INT64_MAX);
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    if (st.runs_evicted) {
        t->too_big = 1;
        return -1;
    }
    for (int i = 0; i < s->n; i++) {
        const event *e = &s->ev[i];
        t->kpos[e->id] = t->kn[e->key];
        t->kkey[e->id] = e->key;
        t->kev[e->key][t->kn[e->key]++] = e;
    }
    for (int k = 1; k <= 3; k++) {
        for (int i = 0; i < MAXEV; i++) t->alive[k][i] = -1;
        enumctx c = {.p = p, .n = t->kn[k], .out = &t->ref[k], .alive = t->alive[k]};
        memcpy(c.ev, t->kev[k], sizeof c.ev);
        enumerate(&c);
        if (t->ref[k].overflow) {
            t->too_big = 1;
            return -1;
        }
        if (t->ref[k].n > 1) qsort(t->ref[k].v, (size_t)t->ref[k].n, sizeof *t->ref[k].v, cmp_match);
    }
    return compare(t, p, s);
}

/* ---- reporting ---- */

static void print_case(const pattern *p, const stream *s, trial_result *t) {
    sbuf b = {0};
    rule_lua(&b, p);
    sb_add(&b, "events:\n");
    for (int i = 0; i < s->n; i++) {
        sb_add(&b, "  ");
        event_json(&b, &s->ev[i]);
        sb_add(&b, "\n");
    }
    sb_add(&b, "engine alerts (events; steps):\n");
    for (int i = 0; i < t->got.n; i++) {
        const ealert *a = &t->got.v[i];
        sb_add(&b, "  k%d at %s%d: ", a->key, a->at < 0 ? "advance" : "e", a->at < 0 ? 0 : a->at);
        for (int j = 0; j < a->n; j++) sb_add(&b, "%se%d", j ? "," : "", a->ids[j]);
        sb_add(&b, ";");
        for (int j = 0; j < p->nsteps; j++) sb_add(&b, " s%d=%d", j, a->cnt[j]);
        sb_add(&b, "\n");
    }
    sb_add(&b, "enumerated matches before the skip strategy (events with their steps), by completing event:\n");
    for (int k = 1; k <= 3; k++)
        for (int i = 0; i < t->ref[k].n; i++) {
            const match *m = &t->ref[k].v[i];
            sb_add(&b, "  k%d at e%d: ", k, t->kev[k][m->last]->id);
            for (int j = 0; j < m->n; j++) sb_add(&b, "%se%d:s%d", j ? "," : "", t->kev[k][m->pos[j]]->id, m->step[j]);
            sb_add(&b, "\n");
        }
    sb_add(&b, "mismatch: %s\n", t->why);
    fputs(b.s, stderr);
    free(b.s);
}

/* Remove events (one at a time, greedily) while the trial still fails. */
static void shrink(const pattern *p, stream *s) {
    int progress = 1;
    while (progress) {
        progress = 0;
        for (int i = 0; i < s->n; i++) {
            stream c = *s;
            memmove(&c.ev[i], &c.ev[i + 1], (size_t)(c.n - i - 1) * sizeof c.ev[0]);
            c.n--;
            trial_result t;
            int rc = run_trial(p, &c, &t);
            result_free(&t);
            if (rc == 1) {
                *s = c;
                progress = 1;
                break;
            }
        }
    }
}

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end = NULL;
    long x = strtol(v, &end, 10);
    return *end ? dflt : x;
}

/* What the judged trials exercised, printed with the summary. */
typedef struct {
    long steps, cont[3], quant[5], optional, consecutive, stop_when, within;
    long skip[5], skip_alerts[5], skip_with_alerts[5];
} coverage;

static void cover(coverage *c, const pattern *p, long nalerts) {
    for (int j = 0; j < p->nsteps; j++) {
        const pstep *s = &p->st[j];
        c->steps++;
        if (j) c->cont[s->cont]++;
        c->quant[s->quant]++;
        c->optional += s->optional;
        c->consecutive += s->consecutive;
        c->stop_when += s->has_until;
    }
    c->within += p->within != 0;
    c->skip[p->skip]++;
    c->skip_alerts[p->skip] += nalerts;
    c->skip_with_alerts[p->skip] += nalerts > 0;
}

static void print_coverage(const coverage *c) {
    static const char *const skips[] = {"no_skip", "skip_to_next", "skip_past_last_event", "skip_to_first",
                                        "skip_to_last"};
    fprintf(stderr, "  steps %ld: next %ld, followed_by %ld, followed_by_any %ld; single %ld, times(n) %ld, "
            "times(n,m) %ld, one_or_more %ld, times_or_more %ld; optional %ld, consecutive %ld, stop_when %ld; "
            "within in %ld trials\n", c->steps, c->cont[C_NEXT], c->cont[C_FOLLOWED_BY], c->cont[C_FOLLOWED_BY_ANY],
            c->quant[Q_ONE], c->quant[Q_TIMES], c->quant[Q_RANGE], c->quant[Q_ONE_OR_MORE], c->quant[Q_OR_MORE],
            c->optional, c->consecutive, c->stop_when, c->within);
    fprintf(stderr, "  skip (trials / with alerts / alerts):");
    for (int k = 0; k < 5; k++)
        fprintf(stderr, "%s %s %ld/%ld/%ld", k ? "," : "", skips[k], c->skip[k], c->skip_with_alerts[k],
                c->skip_alerts[k]);
    fprintf(stderr, "\n");
}

static void test_random_patterns(void) {
    uint64_t base = (uint64_t)env_long("VIGIL_PROPERTY_SEED", 20260101);
    long trials = env_long("VIGIL_PROPERTY_TRIALS", 500);
    int run_known = env_long("VIGIL_PROPERTY_KNOWN", 0) != 0;
    long failures = 0, skipped = 0, redrawn = 0, alerts = 0, with_alerts = 0;
    long held = 0, held_end = 0, held_forever = 0, held_trials = 0;
    uint64_t held_seed = 0;
    enum { NKD = sizeof known_divergences / sizeof known_divergences[0] - 1 };
    long by_known[1 << NKD] = {0};   /* failures by the set of known divergences their pattern has */
    coverage cov = {0};
    clock_t t0 = clock();
    for (long i = 0; i < trials; i++) {
        uint64_t seed = base + (uint64_t)i, r = seed;
        int alpha = rng_pct(&r, 75) ? rng_int(&r, 2, 3) : 4;
        pattern p;
        const known_divergence *kd;
        int draws = 0;
        do {
            gen_pattern(&r, &p, alpha);
            kd = run_known ? NULL : known_for(&p);
            draws++;
        } while (kd && draws < 1000);
        redrawn += draws - 1;
        stream s;
        gen_stream(&r, &s, alpha);
        trial_result t;
        int rc = run_trial(&p, &s, &t);
        if (rc < 0) skipped++;
        else cover(&cov, &p, t.got.n);
        alerts += t.got.n;
        with_alerts += t.got.n > 0;
        if (t.held && !held) held_seed = seed;
        held += t.held;
        held_end += t.held_end;
        held_forever += t.held_forever;
        held_trials += t.held > 0;
        if (rc == 1) {
            failures++;
            unsigned mask = 0;
            for (int k = 0; k < NKD; k++)
                if (known_divergences[k].applies(&p)) mask |= 1u << k;
            /* print the first failure of each kind (the first five when new) */
            if (by_known[mask]++ == 0 || (mask == 0 && by_known[0] <= 5)) {
                fprintf(stderr, "\n--- property failure: seed %llu (replay: VIGIL_PROPERTY_SEED=%llu "
                        "VIGIL_PROPERTY_TRIALS=1%s): %s\n", (unsigned long long)seed, (unsigned long long)seed,
                        run_known ? " VIGIL_PROPERTY_KNOWN=1" : "", t.why);
                fprintf(stderr, "known divergences of this pattern:");
                for (int k = 0; k < NKD; k++)
                    if (mask & (1u << k)) fprintf(stderr, " %s", known_divergences[k].name);
                fprintf(stderr, "%s\n", mask ? "" : " none (a new one)");
                result_free(&t);
                shrink(&p, &s);
                run_trial(&p, &s, &t);
                fprintf(stderr, "shrunk reproducer:\n");
                print_case(&p, &s, &t);
            }
        }
        result_free(&t);
    }
    fprintf(stderr, "\n  property: %ld trials (seeds %llu..%llu), %ld failed, %ld skipped (too big), %ld patterns "
            "redrawn (known divergences), %ld alerts compared, %ld trials with alerts, %.2f s\n",
            trials, (unsigned long long)base, (unsigned long long)(base + (uint64_t)trials - 1), failures, skipped,
            redrawn, alerts, with_alerts, (double)(clock() - t0) / CLOCKS_PER_SEC);
    print_coverage(&cov);
    fprintf(stderr, "  held matches: %ld alerts came after the event that completed them (%ld at the end of input), "
            "in %ld trials, first in seed %llu; %ld completed matches stayed held (no within)\n", held, held_end,
            held_trials, (unsigned long long)held_seed, held_forever);
    for (unsigned m = 0; m < (1u << NKD); m++) {
        if (!by_known[m]) continue;
        fprintf(stderr, "  %ld failures with known divergences:", by_known[m]);
        for (int k = 0; k < NKD; k++)
            if (m & (1u << k)) fprintf(stderr, " %s", known_divergences[k].name);
        fprintf(stderr, "%s\n", m ? "" : " none");
    }
    CU_ASSERT_EQUAL(failures, 0);
}

/* ---- the enumerator itself against FlinkCEP's own expected results ----
 * Cases from Flink's flink-cep NFAITCase.java (apache/flink, test names
 * given), with FlinkCEP event names mapped to types: "c" start, "a" middle,
 * "b" end, "d" anything else. Expected matches are sets of positions (Flink's
 * compareMaps ignores order). allowCombinations() cases are left out (no DSL
 * equivalent). */

static pstep fstep(char type, int cont, int lo, int hi, int optional, int consecutive) {
    pstep s;
    memset(&s, 0, sizeof s);
    s.cond.type = type;
    s.cont = cont;
    s.lo = lo;
    s.hi = hi;
    s.optional = optional;
    s.consecutive = consecutive;
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The matches of p over `types` (one key; ts = position + 1 unless given)
 * as a sorted "|"-separated list of comma-separated positions. */
static void enum_text(const pattern *p, const char *types, const int *ts, char *out, size_t n) {
    event ev[MAXEV];
    matches m = {0};
    int alive[MAXEV];
    enumctx c = {.p = p, .out = &m, .alive = alive};
    for (int i = 0; types[i] && i < MAXEV; i++) {
        memset(&ev[i], 0, sizeof ev[i]);
        ev[i].type = types[i];
        ev[i].ts = ts ? ts[i] : i + 1;
        ev[i].id = i;
        c.ev[c.n++] = &ev[i];
    }
    for (int i = 0; i < MAXEV; i++) alive[i] = -1;
    enumerate(&c);
    char **v = calloc((size_t)m.n + 1, sizeof *v);
    if (!v) abort();
    for (int i = 0; i < m.n; i++) {
        sbuf b = {0};
        for (int j = 0; j < m.v[i].n; j++) sb_add(&b, "%s%d", j ? "," : "", m.v[i].pos[j]);
        v[i] = b.s;
    }
    qsort(v, (size_t)m.n, sizeof *v, cmp_str);
    size_t off = 0;
    out[0] = '\0';
    for (int i = 0; i < m.n; i++) {
        off += (size_t)snprintf(out + off, off < n ? n - off : 0, "%s%s", i ? "|" : "", v[i]);
        free(v[i]);
    }
    free(v);
    free(m.v);
}

static void check_enum(const char *name, const pattern *p, const char *types, const int *ts, const char *expect) {
    char got[2048], want[2048];
    enum_text(p, types, ts, got, sizeof got);
    /* sort the expectation the same way */
    char copy[2048], *v[64], *save = NULL;
    int n = 0;
    snprintf(copy, sizeof copy, "%s", expect);
    for (char *t = strtok_r(copy, "|", &save); t && n < 64; t = strtok_r(NULL, "|", &save)) v[n++] = t;
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    size_t off = 0;
    want[0] = '\0';
    for (int i = 0; i < n; i++) off += (size_t)snprintf(want + off, sizeof want - off, "%s%s", i ? "|" : "", v[i]);
    if (strcmp(got, want) != 0) fprintf(stderr, "\n  %s: enumerator gives \"%s\", FlinkCEP expects \"%s\"\n", name, got, want);
    CU_ASSERT_STRING_EQUAL(got, want);
}

static void test_enumerator_vs_flink(void) {
    enum { N = C_NEXT, F = C_FOLLOWED_BY, A = C_FOLLOWED_BY_ANY, U = UNBOUNDED };
    pattern p;
#define PAT(...)                                                                   \
    do {                                                                           \
        const pstep st_[] = {__VA_ARGS__};                                         \
        memset(&p, 0, sizeof p);                                                   \
        p.nsteps = (int)(sizeof st_ / sizeof st_[0]);                              \
        memcpy(p.st, st_, sizeof st_);                                             \
    } while (0)
    /* testOptional */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', F, 1, 1, 1, 0), fstep('b', F, 1, 1, 0, 0));
    check_enum("testOptional", &p, "cab", NULL, "0,1,2|0,2");
    /* testSkipTillNextOneOrMore / testSkipTillNextZeroOrMore / testStrictOneOrMore /
     * testStrictEagerZeroOrMore: c d a1 a2 a3 d a4 b */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', F, 1, U, 0, 0), fstep('b', F, 1, 1, 0, 0));
    check_enum("testSkipTillNextOneOrMore", &p, "cdaaadab", NULL, "0,2,3,4,6,7|0,2,3,4,7|0,2,3,7|0,2,7");
    p.st[1].optional = 1;
    check_enum("testSkipTillNextZeroOrMore", &p, "cdaaadab", NULL, "0,2,3,4,6,7|0,2,3,4,7|0,2,3,7|0,2,7|0,7");
    p.st[1].consecutive = 1;
    check_enum("testStrictEagerZeroOrMore", &p, "cdaaadab", NULL, "0,2,3,4,7|0,2,3,7|0,2,7|0,7");
    p.st[1].optional = 0;
    check_enum("testStrictOneOrMore", &p, "cdaaadab", NULL, "0,2,3,4,7|0,2,3,7|0,2,7");
    /* testNextZeroOrMore: start event middle middle middle end */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', N, 1, U, 1, 1), fstep('b', F, 1, 1, 0, 0));
    check_enum("testNextZeroOrMore", &p, "cdaaab", NULL, "0,5");
    /* testTimesNonStrictOptional1: c f b, times(3).optional() */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', F, 3, 3, 1, 0), fstep('b', F, 1, 1, 0, 0));
    check_enum("testTimesNonStrictOptional1", &p, "cdb", NULL, "0,2");
    /* testTimesNonStrictOptional3 / testTimesStrictOptional: c f a1 f a2 a3 b */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', A, 2, 2, 1, 0), fstep('b', F, 1, 1, 0, 0));
    check_enum("testTimesNonStrictOptional3", &p, "cdadaab", NULL, "0,2,4,6|0,4,5,6|0,6");
    p.st[1].consecutive = 1;
    check_enum("testTimesStrictOptional", &p, "cdadaab", NULL, "0,4,5,6|0,6");
    /* testOneOrMoreStrictOptional */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', A, 1, U, 1, 1), fstep('b', F, 1, 1, 0, 0));
    check_enum("testOneOrMoreStrictOptional", &p, "cdadaab", NULL, "0,4,5,6|0,2,6|0,4,6|0,5,6|0,6");
    /* testTimesStrictOptional1: c a1 a2 a3 b, next(a).times(2).consecutive().optional() */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', N, 2, 2, 1, 1), fstep('b', F, 1, 1, 0, 0));
    check_enum("testTimesStrictOptional1", &p, "caaab", NULL, "0,1,2,4|0,4");
    /* testTimesStrictWithNextAndConsecutive: c a1 f a2 a3 b */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', N, 2, 2, 0, 1), fstep('b', F, 1, 1, 0, 0));
    check_enum("testTimesStrictWithNextAndConsecutive", &p, "cadaab", NULL, "");
    /* testStartWithOneOrMoreStrict: c a1 c a2 a3 */
    PAT(fstep('a', N, 1, U, 0, 1));
    check_enum("testStartWithOneOrMoreStrict", &p, "cacaa", NULL, "1|3,4|3|4");
    /* testEndWithOneOrMore: c a1 a2 a3 */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', F, 1, U, 0, 0));
    check_enum("testEndWithOneOrMore", &p, "caaa", NULL, "0,1,2,3|0,1,2|0,1");
    /* testEndWithOptional: c a1 */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', F, 1, 1, 1, 0));
    check_enum("testEndWithOptional", &p, "ca", NULL, "0,1|0");
    /* testStartWithTimes: a1 a2 a3 b, times(2).consecutive() */
    PAT(fstep('a', N, 2, 2, 0, 1), fstep('b', F, 1, 1, 0, 0));
    check_enum("testStartWithTimes", &p, "aaab", NULL, "0,1,3|1,2,3");
    /* testAtLeastOneEager: c a1 a2 a3 b, followedByAny everywhere */
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', A, 1, U, 0, 0), fstep('b', A, 1, 1, 0, 0));
    check_enum("testAtLeastOneEager", &p, "caaab", NULL, "0,1,2,3,4|0,1,2,4|0,2,3,4|0,3,4|0,2,4|0,1,4");
    /* testSimplePatternWithTimeWindowNFA: start(1) start(2) middle(3) foobar(4) end(11) end(13), within 10 */
    static const int ts[] = {1, 2, 3, 4, 11, 13};
    PAT(fstep('c', N, 1, 1, 0, 0), fstep('a', F, 1, 1, 0, 0), fstep('b', F, 1, 1, 0, 0));
    p.within = 10;
    check_enum("testSimplePatternWithTimeWindowNFA", &p, "ccadbb", ts, "1,2,4");
    /* Flink docs, "After Match Skip Strategy": b+ next c on b1 b2 b3 c */
    PAT(fstep('b', N, 1, U, 0, 0), fstep('c', N, 1, 1, 0, 0));
    check_enum("docs b+ c", &p, "bbbc", NULL, "0,1,2,3|1,2,3|2,3");
#undef PAT
}

/* ---- sliding windows with stragglers vs a brute-force window ---------------
 *
 * DESIGN.md §3 "Windows": a sliding window is exact over (t - size, t], t the
 * event's own time, and a straggler accepted within allowed_lateness is
 * evaluated over its own window and enters and leaves windows by its own
 * time. A trial draws a size (2-30 s), an allowed lateness (0-40 s), 1-3 keys
 * and 10-80 events: mostly ahead of the latest time seen, some behind it by up
 * to lateness + 5 s (so some are late: the model says which, from the
 * watermark = the latest time seen, and the engine must agree). Every
 * accepted event alerts (`when` always holds), and its details must give what
 * a brute-force pass over the accepted events of its key that arrived up to
 * it with a time in (t - size, t] gives: count, sum, min, max, avg,
 * distinct and is_new of a typed value, each also without the event (prior).
 * Seeds as above (VIGIL_PROPERTY_SEED, VIGIL_PROPERTY_TRIALS). */

#define WMAX 80
typedef struct { int64_t ts; int key, amount, val, late; } wev;   /* amount -1, val -1: missing */
static const char *const WVALS[] = {"1", "\"1\"", "true", "\"true\"", "\"a\"", "2.5", "1.0"};
static const int WVAL_ID[] = {0, 1, 2, 3, 4, 5, 0};   /* 1.0 is the number 1 */

typedef struct { int n; char det[WMAX][768]; char ev[WMAX][16]; } wgot;

static void w_alert(void *ud, const vigil_alert *a) {
    wgot *g = ud;
    if (g->n >= WMAX) return;
    snprintf(g->det[g->n], sizeof g->det[0], "%s", a->details_json);
    snprintf(g->ev[g->n], sizeof g->ev[0], "%s", a->event ? a->event : "");
    g->n++;
}

/* The number after "label": in det; NAN for null or absent. */
static double w_num(const char *det, const char *label) {
    char pat[96];
    snprintf(pat, sizeof pat, "\"%s\":", label);
    const char *p = strstr(det, pat);
    if (!p || strncmp(p + strlen(pat), "null", 4) == 0) return NAN;
    if (strncmp(p + strlen(pat), "true", 4) == 0) return 1;
    if (strncmp(p + strlen(pat), "false", 5) == 0) return 0;
    return strtod(p + strlen(pat), NULL);
}

static int w_same(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-6 * (1 + fabs(b));
}

/* The model's aggregates of event i over the accepted events of its key
 * arrived up to i (with i itself when with_i) and within (t - size, t]. */
static void w_model(const wev *e, int i, int64_t size, int with_i, double out[6]) {
    int n = 0, na = 0, seen[8] = {0}, nd = 0;
    double sum = 0, mn = NAN, mx = NAN;
    for (int j = 0; j <= i; j++) {
        if (e[j].late || e[j].key != e[i].key || (j == i && !with_i)) continue;
        if (e[j].ts <= e[i].ts - size || e[j].ts > e[i].ts) continue;
        n++;
        if (e[j].amount >= 0) {
            double x = e[j].amount;
            sum += x;
            na++;
            if (isnan(mn) || x < mn) mn = x;
            if (isnan(mx) || x > mx) mx = x;
        }
        if (e[j].val >= 0 && !seen[WVAL_ID[e[j].val]]++) nd++;
    }
    out[0] = n, out[1] = sum, out[2] = mn, out[3] = mx, out[4] = na ? sum / na : NAN, out[5] = nd;
}

static int w_is_new(const wev *e, int i, int64_t size) {
    if (e[i].val < 0) return 0;
    for (int j = 0; j < i; j++)
        if (!e[j].late && e[j].key == e[i].key && e[j].ts > e[i].ts - size && e[j].ts <= e[i].ts &&
            e[j].val >= 0 && WVAL_ID[e[j].val] == WVAL_ID[e[i].val])
            return 0;
    return 1;
}

static long w_stragglers, w_late, w_alerts;

static int w_trial(uint64_t seed, int verbose) {
    uint64_t r = seed;
    int64_t size = 1000 * rng_int(&r, 2, 30), late = 1000 * rng_int(&r, 0, 40);
    int nkeys = rng_int(&r, 1, 3), n = rng_int(&r, 10, WMAX);
    static wev e[WMAX];
    int64_t base = 1700000000000, maxts = base;
    for (int i = 0; i < n; i++) {
        int64_t ts = rng_pct(&r, 70) ? maxts + 100 * rng_int(&r, 0, 40)
                                     : maxts - 100 * rng_int(&r, 0, (int)(late / 100) + 50);
        e[i] = (wev){ts, rng_int(&r, 0, nkeys - 1), rng_pct(&r, 85) ? rng_int(&r, 0, 9) : -1,
                     rng_pct(&r, 85) ? rng_int(&r, 0, 6) : -1, i > 0 && ts < maxts - late};
        if (i == 0) maxts = ts;   /* the watermark starts at the first event */
        w_late += e[i].late;
        w_stragglers += !e[i].late && ts < maxts;
        if (!e[i].late && ts > maxts) maxts = ts;
    }
    char src[512];
    snprintf(src, sizeof src,
             "rule{name='w',key='k',window=sliding('%lldms'),when=all_of{ge(count(),0),"
             "any_of{ge(sum('amount'),0),ge(min('amount'),0),ge(max('amount'),0),ge(avg('amount'),0),"
             "ge(distinct('v'),0),is_new('v'),ge(count(),0)}}}",
             (long long)size);
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int ne = 0;
    if (vigil_rules_load_string("w.lua", src, strlen(src), NULL, &rs, errs, 2, &ne) != VIGIL_OK) return -1;
    static wgot g;
    g.n = 0;
    vigil_engine_opts o = {.max_runs = 64, .max_alert_events = 100, .max_evidence = 20, .allowed_lateness_ms = late};
    vigil_engine *eng = vigil_engine_create(rs, &o, NULL, w_alert, &g);
    int bad = 0;
    for (int i = 0; i < n && !bad; i++) {
        char js[256], amt[32] = "", val[32] = "";
        if (e[i].amount >= 0) snprintf(amt, sizeof amt, ",\"amount\":%d", e[i].amount);
        if (e[i].val >= 0) snprintf(val, sizeof val, ",\"v\":%s", WVALS[e[i].val]);
        snprintf(js, sizeof js, "{\"id\":\"e%d\",\"k\":\"k%d\",\"ts\":%lld%s%s}", i, e[i].key, (long long)e[i].ts, amt,
                 val);
        vigil_event *ev;
        vigil_error err;
        if (vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err) != VIGIL_OK) return -1;
        g.n = 0;
        vigil_status st = vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
        if ((st == VIGIL_ELATE) != e[i].late || g.n != !e[i].late) {
            if (verbose) fprintf(stderr, "\n  seed %llu event e%d (ts +%lld): late %d, engine status %d, %d alerts\n",
                                 (unsigned long long)seed, i, (long long)(e[i].ts - base), e[i].late, st, g.n);
            bad = 1;
            break;
        }
        if (e[i].late) continue;
        w_alerts++;
        double cur[6], pri[6];
        w_model(e, i, size, 1, cur);
        w_model(e, i, size, 0, pri);
        static const char *lab[6] = {"count()", "sum(amount)", "min(amount)", "max(amount)", "avg(amount)",
                                     "distinct(v)"};
        char pl[64];
        for (int k = 0; k < 6 && !bad; k++) {
            snprintf(pl, sizeof pl, "prior(%s)", lab[k]);
            bad = !w_same(w_num(g.det[0], lab[k]), cur[k]) || !w_same(w_num(g.det[0], pl), pri[k]);
        }
        bad |= w_num(g.det[0], "is_new(v)") != w_is_new(e, i, size);
        if (bad && verbose) {
            fprintf(stderr, "\n  seed %llu (size %lld ms, lateness %lld ms) event e%d ts +%lld key %d: %s\n"
                    "  model count %g/%g sum %g/%g min %g/%g max %g/%g avg %g/%g distinct %g/%g is_new %d\n  stream:",
                    (unsigned long long)seed, (long long)size, (long long)late, i, (long long)(e[i].ts - base),
                    e[i].key, g.det[0], cur[0], pri[0], cur[1], pri[1], cur[2], pri[2], cur[3], pri[3], cur[4], pri[4],
                    cur[5], pri[5], w_is_new(e, i, size));
            for (int j = 0; j <= i; j++)
                fprintf(stderr, " e%d@%lld/k%d%s", j, (long long)(e[j].ts - base), e[j].key, e[j].late ? "(late)" : "");
            fprintf(stderr, "\n");
        }
    }
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    return bad;
}

static void test_sliding_stragglers(void) {
    const char *sv = getenv("VIGIL_PROPERTY_SEED"), *tv = getenv("VIGIL_PROPERTY_TRIALS");
    uint64_t seed0 = sv ? strtoull(sv, NULL, 10) : 20260101;
    int trials = tv ? atoi(tv) : 500, fails = 0, errors = 0;
    for (int t = 0; t < trials && fails < 3; t++) {
        int b = w_trial(seed0 + (uint64_t)t, 1);
        fails += b > 0;
        errors += b < 0;
    }
    fprintf(stderr, "\n  sliding: %d trials, %d failed, %ld alerts compared, %ld stragglers accepted, %ld late\n",
            trials, fails, w_alerts, w_stragglers, w_late);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(fails, 0);
    CU_ASSERT(trials < 100 || w_stragglers > trials);   /* the streams did hold stragglers */
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("pattern matcher properties", NULL, NULL);
    CU_add_test(s, "the enumerator gives FlinkCEP's own expected results (NFAITCase)", test_enumerator_vs_flink);
    CU_add_test(s, "random patterns and streams vs brute-force enumeration", test_random_patterns);
    CU_add_test(s, "sliding windows with stragglers vs a brute-force window", test_sliding_stragglers);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
