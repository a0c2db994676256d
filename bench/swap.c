/* swap.c — what a rule hot reload costs (issue 11): the pause of
 * vigil_engine_swap at a batch boundary, and the throughput of a run with 10
 * swaps against the same run with none, side by side in one process run.
 *
 * Why the engine alone: in `vigil serve` a worker stops taking events only
 * while its engine swaps (the marker waits in its queue like an event; the
 * batch before it commits as any batch does), so the pause a swap adds to a
 * worker is vigil_engine_swap's time: a walk of every key whose group's
 * rules changed, one new key state each, and the timer heap rebuilt. That
 * cost grows with the keys, so the stream has many.
 *
 * The stream: --events JSON events (default 2 M) over --keys users (default
 * 200 k: every key gets state), event time 1000 events/s, types tx 70 %,
 * login 30 %, amounts 1..500; rendered before any timing. Rules (built the
 * way the server builds them: vigil_rules_build over the running ruleset):
 * a velocity count over 1 h, an average over 1 d, a login→tx pattern within
 * 10 min, and `vel_changed`, the rule the swaps change. Swaps alternate: a
 * compatible change (the threshold: the window is inherited) and an
 * incompatible one (the `where`: the new version starts empty); the
 * other rules are unchanged (same group: their states move to the new key
 * state by pointer). Each pass runs in a fresh child process (a fresh
 * heap); passes alternate none / swaps, --rounds times (default 3).
 * Reported: events/s (CPU time of the thread, decode + feed), the ratio
 * swaps / none per round and its median, each swap's pause in µs (wall
 * clock around vigil_engine_swap) with the keys it moved.
 *
 *   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2 --target bench_swap
 *   build-bench/bench_swap [--events 2M] [--keys 200k] [--swaps 10] [--rounds 3] */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "vigil/engine.h"
#include "vigil/rules.h"

static const char *BASE_RULES =
    "rule{name='velocity',key='user',where={type='tx'},window=sliding('1h'),when=ge(count(),20)}\n"
    "rule{name='avg_day',key='user',where={type='tx'},window=sliding('1d'),"
    "when=all_of{ge(prior(count()),5),gt(e.amount,4*prior(avg('amount')))}}\n"
    "rule{name='login_tx',key='user',pattern=begin('l'):where{type='login'}:followed_by('t'):where{type='tx',"
    "amount=gt(450)},within='10m'}\n";
#define CHANGED "rule{name='vel_changed',key='user',where={type='tx'%s},window=sliding('1h'),when=ge(count(),%d)}"


static uint64_t parse_count(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k') v *= 1e3, end++;
    else if (*end == 'M') v *= 1e6, end++;
    if (end == s || *end || v < 0) {
        fprintf(stderr, "bench_swap: bad number '%s'\n", s);
        exit(2);
    }
    return (uint64_t)llround(v);
}

static uint64_t cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static uint64_t mono_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The ruleset of step k: the base rules and vel_changed at version k + 1,
 * threshold 20 or 21 by k % 2, `where` with or without `amount = ge(1)`
 * (every event has one: the same events) by (k / 2) % 2: an odd step
 * changes only the threshold (compatible: the window is inherited), an even
 * one the `where` too (not compatible: the new version starts empty). Both
 * keep the matching cost of the runs the same. */
static vigil_ruleset *build(const vigil_ruleset *base, int k) {
    char changed[256];
    snprintf(changed, sizeof changed, CHANGED, (k / 2) % 2 ? ",amount=ge(1)" : "", 20 + k % 2);
    vigil_rule_pick bp[3] = {{.name = "velocity", .version = 1}, {.name = "avg_day", .version = 1},
                             {.name = "login_tx", .version = 1}};
    vigil_rule_pick cp = {.name = "vel_changed", .version = k + 1};
    vigil_rule_source srcs[2] = {{.file = "base.lua", .src = BASE_RULES, .len = strlen(BASE_RULES), .picks = bp, .npicks = 3},
                                 {.file = "changed.lua", .src = changed, .len = strlen(changed), .picks = &cp, .npicks = 1}};
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int ne = 0;
    if (vigil_rules_build(srcs, 2, base, NULL, &rs, errs, 2, &ne) != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&errs[0], buf, sizeof buf);
        fprintf(stderr, "bench_swap: %s\n", buf);
        exit(1);
    }
    return rs;
}

typedef struct stream { char *buf; size_t *off; uint64_t n; } stream;

static stream render(uint64_t n, uint64_t keys) {
    stream s = {.n = n};
    s.off = malloc((n + 1) * sizeof *s.off);
    s.buf = malloc(n * 100);
    if (!s.off || !s.buf) exit(1);
    size_t at = 0;
    int64_t t0 = 1793491200000LL;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t h = mix64(i + 1);
        uint64_t user = i < keys ? mix64(i * 7919) % keys : h % keys;   /* every key first */
        int tx = (h >> 20) % 10 < 7;
        s.off[i] = at;
        at += (size_t)sprintf(s.buf + at, "{\"id\":\"e%" PRIu64 "\",\"ts\":%" PRId64 ",\"user\":\"u%07" PRIu64
                                          "\",\"type\":\"%s\",\"amount\":%d}",
                              i, t0 + (int64_t)i, user, tx ? "tx" : "login", (int)((h >> 32) % 500) + 1);
    }
    s.off[n] = at;
    return s;
}

static void on_alert(void *ud, const vigil_alert *a) {
    (void)a;
    ++*(uint64_t *)ud;
}

/* One pass: feed the stream, swapping `swaps` times at even intervals.
 * Writes rate (events per CPU-second), alerts, and per swap: pause µs, keys. */
static void pass(const stream *s, int swaps, double *out) {
    vigil_ruleset *rs = build(NULL, 0);
    uint64_t alerts = 0;
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &alerts);
    uint64_t every = swaps ? s->n / (uint64_t)(swaps + 1) : s->n + 1, cpu = 0;
    int k = 0;
    for (uint64_t i = 0; i < s->n; i++) {
        if (swaps && i && i % every == 0 && k < swaps) {
            vigil_ruleset *next = build(rs, k + 1);   /* the control wing builds it, not the worker: untimed */
            vigil_engine_stats st;
            vigil_engine_get_stats(eng, &st);
            uint64_t w0 = mono_ns(), c1 = cpu_ns();
            vigil_error err;
            if (vigil_engine_swap(eng, next, &err) != VIGIL_OK) {
                fprintf(stderr, "bench_swap: swap: %s\n", err.msg);
                exit(1);
            }
            cpu += cpu_ns() - c1;
            out[3 + 2 * k] = (double)(mono_ns() - w0) / 1e3;
            out[4 + 2 * k] = (double)st.keys;
            vigil_ruleset_release(rs);
            rs = next;
            k++;
        }
        uint64_t c0 = cpu_ns();
        vigil_event *ev;
        vigil_error err;
        if (vigil_event_decode_json(rs, NULL, s->buf + s->off[i], s->off[i + 1] - s->off[i], NULL, 1, &ev, &err) !=
            VIGIL_OK) {
            fprintf(stderr, "bench_swap: decode: %s\n", err.msg);
            exit(1);
        }
        vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
        cpu += cpu_ns() - c0;
    }
    out[0] = (double)s->n / ((double)cpu / 1e9);
    out[1] = (double)alerts;
    out[2] = k;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    uint64_t events = 2000000, keys = 200000;
    int swaps = 10, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--events") == 0) events = parse_count(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--keys") == 0) keys = parse_count(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--swaps") == 0) swaps = (int)parse_count(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--rounds") == 0) rounds = (int)parse_count(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_swap [--events 2M] [--keys 200k] [--swaps 10] [--rounds 3]\n");
            return 2;
        }
    }
    if (swaps > 100 || keys < 1 || events < (uint64_t)swaps + 1) return 2;
    stream s = render(events, keys);
    double *res = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) return 1;
    printf("bench_swap: %" PRIu64 " events, %" PRIu64 " keys, %d swaps per run, %d rounds (none/swaps alternating, "
           "each pass a fresh process)\n", events, keys, swaps, rounds);
    double ratios[64], pauses[64 * 100];
    int np = 0;
    for (int r = 0; r < rounds && r < 64; r++) {
        double rate[2], alerts[2];
        for (int v = 0; v < 2; v++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                pass(&s, v ? swaps : 0, res);
                _exit(0);
            }
            int st;
            if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) return 1;
            rate[v] = res[0];
            alerts[v] = res[1];
            if (v)
                for (int k = 0; k < (int)res[2]; k++) {
                    pauses[np++] = res[3 + 2 * k];
                    if (r == 0)
                        printf("  swap %2d (%s): %8.0f µs, %.0f keys\n", k + 1, (k + 1) % 2 ? "compatible  " : "incompatible",
                               res[3 + 2 * k], res[4 + 2 * k]);
                }
        }
        ratios[r] = rate[1] / rate[0];
        printf("round %d: none %.0f events/s (%.0f alerts), %d swaps %.0f events/s (%.0f alerts): ratio %.3f\n", r + 1,
               rate[0], alerts[0], swaps, rate[1], alerts[1], ratios[r]);
    }
    qsort(ratios, (size_t)rounds, sizeof *ratios, cmp_d);
    qsort(pauses, (size_t)np, sizeof *pauses, cmp_d);
    printf("median ratio (with swaps / without): %.3f; swap pause over %d swaps: median %.0f µs, max %.0f µs\n",
           ratios[rounds / 2], np, np ? pauses[np / 2] : 0.0, np ? pauses[np - 1] : 0.0);
    return 0;
}
