/* synth.c — the synthetic benchmark of issue 3: the engine in-process, one
 * thread, the memory store, on a generated fraud-like stream.
 *
 * Why in-process: `vigil replay` measures a whole process over a file
 * (bench/replay.sh); this measures what the engine itself costs per event,
 * per key and per partial match, on shapes the card data does not have (a
 * million keys, regexes, 30-day windows, an attacker key).
 *
 * The stream. Events are JSON lines rendered by a seeded generator (fixed
 * seed: the same stream every run) in batches of --batch lines; rendering is
 * never timed. What is timed, per batch: vigil_event_decode_json of every
 * line (as `vigil serve` decodes an NDJSON batch), vigil_engine_feed of every
 * event, vigil_event_release. Three rates come out of that:
 *   pipeline    = events / (decode + feed + release)   — what a worker does
 *   engine only = events / feed                          — the matching alone
 *   decode only = a separate pass over the same lines without an engine
 *                 (decode + release), as `vigil replay --decode-only`.
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID, read per batch):
 * events per second of one core even when other processes share the
 * machine; the wall-clock rate and the CPU share are printed beside them.
 * Per-event latency (--mode latency, worst) is wall clock (CLOCK_MONOTONIC)
 * around each vigil_engine_feed, so preemption shows in its tail: the
 * involuntary context switches of the phase are printed with it.
 * The alert callback does nothing (the engine counts alerts; their JSON is
 * not built; the alert id, a SHA-256, is computed by the engine and is
 * measured). When the
 * engine has vigil_engine_warm (prefetch a batch's key states) the
 * throughput loops call it per 64 events, as replay does; the per-event
 * latency loops do not (each sample is then its event's whole cost). Passes
 * that are compared (regex, worst) each run in a fresh child process: a
 * pass after another would reuse the heap pages the first one faulted in.
 *
 * Each line: {"id":"e17","ts":1793491200123,"user":"u0123456","type":"tx",
 * "amount":42.17,"country":"FR","device":"d1a2b3c4","email":"…","ip":"…",
 * "ua":"Mozilla/5.0 …"} (~250 bytes; `amount` only on tx). Event time is a
 * Poisson process of --rate events/s (default 1000/s, from 2026-11-01).
 * Keys: a seed phase first gives every one of --keys users (default 1 M)
 * exactly one event, in a scrambled order (so that 1 M keys have state);
 * then the main phase draws the user from a two-tier mix: with probability
 * --hot-share (5 %) one of --hot-keys (1,000) "hot" users (bots, testers;
 * python/curl user agents), else uniformly among all users. Types: tx 45 %,
 * login 28 %, logout 10 %, login_fail 8 %, verify 4 %, reset 2 %,
 * change_email 1.5 %, add_device 1.5 %. Each user has a home country, device,
 * IP, user agent and email derived from a hash of its id; 5 % of events come
 * from another country, 3 % from a new device. Emails: ~1 % disposable
 * domains, 2 % numeric local parts, 3 % "+alias", 0.5 % admin-like names;
 * change_email events carry a new address (10 % on .ru/.tk/.xyz/.top).
 *
 * Modes (bench/synth.sh runs them all and prints the summary):
 *   mix      the 20 rules of bench/rules_synth/mix: rates cold (seed phase:
 *            every event creates its key) and warm (main phase), alerts
 *   regex    1 vs 50 regexes on `email`, each against the same number of
 *            rules with a literal equality instead (separates scan cost from
 *            rule cost); rulesets generated as DSL text (--dump-rules); and
 *            Hyperscan alone on the stream's emails (1 and 50 patterns)
 *   latency  every vigil_engine_feed timed (CLOCK_MONOTONIC) into a
 *            log-linear histogram (0.2 % resolution): p50/p99/p99.9/max
 *   memory   bytes per idle key of a velocity-only ruleset
 *            (bench/rules_synth/velocity): VmRSS and malloc'd-heap deltas
 *            (jemalloc's stats.allocated, or glibc's mallinfo2 in a build
 *            without jemalloc; the engine's stats count keys, not bytes);
 *            then whether the keys expire once their hour has passed
 *   growth   the mix over --events (default 10 M) events: RSS, heap, keys,
 *            runs at every million
 *   sample   print the stream (--keys seed events, then --events) as NDJSON
 *   worst    bench/rules_synth/worst (patterns that pile up runs, 6 h
 *            within) with the mix's 8 patterns, then with all 20 mix rules:
 *            the normal stream vs the same with --attack (10,000) login
 *            events of one key in place of as many others (--burst: all in
 *            a row); runs, evictions, rates, the attacker's feed latency
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#if defined(VIGIL_JEMALLOC)
#include <jemalloc/jemalloc.h>
#endif
#endif
#include <hs/hs.h>
#include "cli/alloc.h"
#include "vigil/engine.h"
#include "vigil/rules.h"

/* ---- options ------------------------------------------------------------------ */

typedef struct opts {
    const char *mode;
    const char *rules_dir;   /* bench/rules_synth */
    uint64_t events;         /* main-phase events (growth: total) */
    uint64_t keys, hot_keys, seed, attack;
    double hot_share, rate;
    double max_rss_gib;      /* growth: stop above this RSS (the machine is shared) */
    int batch, burst, dump_rules;
    uint32_t max_runs;
} opts;

static void usage(void) {
    fprintf(stderr,
            "usage: bench_synth --mode mix|regex|latency|memory|growth|worst|sample [--events N] [--keys N]\n"
            "                   [--seed S] [--rate EV_PER_S] [--hot-keys N] [--hot-share F] [--batch N]\n"
            "                   [--attack N] [--burst] [--max-runs N] [--rules-dir DIR] [--dump-rules]\n"
            "                   [--max-rss-gib G]\n"
            "N accepts k/M suffixes (10M). Defaults: --events 1M (growth: 10M), --keys 1M, --seed 42,\n"
            "--rate 1000, --hot-keys 1000, --hot-share 0.05, --batch 1024, --attack 10000 (worst),\n"
            "--rules-dir bench/rules_synth, --max-rss-gib 12 (growth stops above it).\n");
    exit(2);
}

static uint64_t parse_count(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) usage();
    if (*end == 'k' || *end == 'K') v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm') v *= 1e6, end++;
    if (*end) usage();
    return (uint64_t)llround(v);
}

static double parse_double(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0) usage();
    return v;
}

/* ---- small tools -------------------------------------------------------------- */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}


/* Run a pass in a child process, so that every pass starts with a fresh
 * heap: a pass run after another in the same process reuses the pages the
 * first faulted in and freed, and looks faster. Returns 1 in the child
 * (which ends with end_pass()), 0 in the parent once the child is done. */
static int fork_pass(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_synth: fork");
        exit(1);
    }
    if (pid == 0) return 1;
    int st = 0;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_synth: a pass failed\n");
        exit(1);
    }
    return 0;
}
static void end_pass(void) {   /* the engine is not destroyed: the process ends */
    fflush(stdout);
    _exit(0);
}
/* Numbers a child pass hands back to the parent. */
static double *shared_results(void) {
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("bench_synth: mmap");
        exit(1);
    }
    return p;
}

static uint64_t mix64(uint64_t z) {   /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct rng { uint64_t s[4]; } rng;   /* xoshiro256** */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static uint64_t rnext(rng *r) {
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return res;
}
static void rseed(rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = mix64(seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1));
}
static double runif(rng *r) { return (double)(rnext(r) >> 11) * 0x1.0p-53; }   /* [0, 1) */
static uint64_t rbelow(rng *r, uint64_t n) { return n ? rnext(r) % n : 0; }
static double rnormal(rng *r) {
    double u = runif(r), v = runif(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

/* VmRSS / VmHWM of this process in bytes. */
static uint64_t proc_status(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kb = 0;
    size_t n = strlen(field);
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtoull(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb * 1024;
}
static uint64_t rss_now(void) { return proc_status("VmRSS"); }

/* Bytes malloc has handed out and not got back (jemalloc's stats.allocated
 * when it is the allocator, else glibc's mallinfo2), -1 elsewhere. */
static int64_t heap_now(void) {
#if defined(VIGIL_JEMALLOC)
    uint64_t epoch = 1;
    size_t allocated = 0, sz = sizeof epoch;
    mallctl("epoch", &epoch, &sz, &epoch, sz);   /* refresh the stats */
    sz = sizeof allocated;
    return mallctl("stats.allocated", &allocated, &sz, NULL, 0) == 0 ? (int64_t)allocated : -1;
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (int64_t)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

static double mib(double b) { return b / 1048576.0; }

/* ---- latency histogram (log-linear: exact below 1024 ns, then 512 sub-buckets
 * per power of two, i.e. 0.2 % resolution; HdrHistogram's layout) ------------------ */

#define HBINS (1024 + 55 * 512)
typedef struct hist { uint64_t b[HBINS]; uint64_t n, max, sum; } hist;

static size_t hbin(uint64_t v) {
    if (v < 1024) return (size_t)v;
    int e = 63 - __builtin_clzll(v), sh = e - 9;
    return 1024 + (size_t)(sh - 1) * 512 + (size_t)((v >> sh) - 512);
}
static uint64_t hmid(size_t i) {
    if (i < 1024) return i;
    size_t k = i - 1024;
    int sh = (int)(k / 512) + 1;
    return ((uint64_t)(k % 512 + 512) << sh) + ((1ULL << sh) >> 1);
}
static void hadd(hist *h, uint64_t v) {
    h->b[hbin(v)]++;
    h->n++;
    h->sum += v;
    if (v > h->max) h->max = v;
}
static double hpct(const hist *h, double p) {   /* ns */
    if (!h->n) return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n), acc = 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i < HBINS; i++)
        if ((acc += h->b[i]) >= rank) return (double)(hmid(i) < h->max ? hmid(i) : h->max);
    return (double)h->max;
}

/* ---- the generator ------------------------------------------------------------ */

static const char *const countries[] = {"US", "GB", "FR", "DE", "ES", "IT", "NL", "BE", "PL", "SE",
                                        "BR", "MX", "IN", "JP", "CA", "AU", "NG", "RU", "TR", "ZA"};
static const char *const firsts[] = {"anna", "john", "maria", "li", "ahmed", "sofia", "lucas", "emma",
                                     "noah", "olga", "pierre", "yuki", "carlos", "fatima", "ivan", "mia"};
static const char *const lasts[] = {"smith", "garcia", "muller", "rossi", "dubois", "kowalski", "silva", "chen",
                                    "tanaka", "novak", "jones", "martin", "petrov", "khan", "brown", "lopez"};
static const char *const domains[] = {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com",
                                      "proton.me", "gmx.de", "web.de", "orange.fr", "mail.ru", "libero.it",
                                      "wp.pl", "acme-corp.com", "globex.net", "initech.io"};
static const int domain_cut[] = {350, 450, 570, 650, 710, 740, 780, 820, 850, 870, 890, 910, 940, 970, 1000};
static const char *const disposable[] = {"mailinator", "guerrillamail", "10minutemail", "trashmail", "yopmail"};
static const char *const risky[] = {"mail.ru", "yandex.ru", "freemail.tk", "inbox.xyz", "box.top"};
static const char *const admins[] = {"admin", "root", "Test", "support"};
static const char *const uas[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "MyBankApp/5.12.1 (iOS 17.6; iPhone15,2)",
    "MyBankApp/5.12.0 (Android 14; SM-S918B)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0"};
static const char *const bot_uas[] = {"python-requests/2.32.3", "curl/8.10.1", "Go-http-client/2.0"};

typedef struct gen_type { const char *name; int permille; } gen_type;
static const gen_type types[] = {{"tx", 450}, {"login", 280}, {"logout", 100}, {"login_fail", 80},
                                 {"verify", 40}, {"reset", 20}, {"change_email", 15}, {"add_device", 15}};

typedef struct gen {
    const opts *o;
    rng r;
    uint64_t n;              /* events rendered */
    uint64_t seed_n;         /* the first seed_n events give each key one event */
    uint64_t main_total;     /* main-phase events in the whole run (for the attack positions) */
    uint64_t attack;         /* attacker events to mix into the main phase */
    uint64_t attack_done;
    double tsd;              /* event time, ms (double: sub-ms Poisson gaps accumulate) */
    double gap_ms;           /* mean gap between events */
    const char *force_type;  /* every event of this type (memory mode) */
    int last_attack;         /* the last rendered event was the attacker's */
} gen;

#define T0_MS 1793491200000.0   /* 2026-11-01T00:00:00Z */
#define PERM_MUL 2654435761ULL  /* a prime: i -> i * P mod keys visits every key once */

static void gen_init(gen *g, const opts *o, uint64_t seed_n, uint64_t main_total, uint64_t attack) {
    memset(g, 0, sizeof *g);
    g->o = o;
    rseed(&g->r, o->seed);
    g->seed_n = seed_n;
    g->main_total = main_total;
    g->attack = attack;
    g->tsd = T0_MS;
    g->gap_ms = 1000.0 / o->rate;
}

/* The user's email from its profile hash (new: a fresh address for change_email). */
static int render_email(char *out, size_t cap, uint64_t h, rng *r, int fresh) {
    if (fresh) h = rnext(r);
    unsigned kind = (unsigned)(h % 1000), dom = (unsigned)((h >> 12) % 1000);
    const char *first = firsts[(h >> 24) % 16], *last = lasts[(h >> 28) % 16];
    char local[64];
    if (kind < 5) snprintf(local, sizeof local, "%s%s%u", admins[(h >> 32) % 4], (h >> 34) & 1 ? "." : "",
                           (unsigned)((h >> 36) % 100));
    else if (kind < 25) snprintf(local, sizeof local, "%c%c%07u", first[0], last[0], (unsigned)((h >> 32) % 10000000));
    else if (kind < 55) snprintf(local, sizeof local, "%s.%s+%c%c%04u", first, last, last[1], first[1],
                                 (unsigned)((h >> 40) % 10000));
    else {
        static const char *const seps[] = {".", "_", ""};
        unsigned d = (unsigned)((h >> 40) % 100);
        char digits[16] = "";
        if (d >= 60 && d < 90) snprintf(digits, sizeof digits, "%02u", (unsigned)((h >> 48) % 100));
        else if (d >= 90) snprintf(digits, sizeof digits, "%04u", (unsigned)((h >> 48) % 10000));
        snprintf(local, sizeof local, "%s%s%s%s", first, seps[(h >> 44) % 3], last, digits);
    }
    if (fresh && (h >> 50) % 10 == 0) return snprintf(out, cap, "%s@%s", local, risky[(h >> 54) % 5]);
    if (dom < 10) {
        static const char *const tld[] = {"com", "net", "org"};
        return snprintf(out, cap, "%s@%s.%s", local, disposable[dom % 5], tld[(h >> 56) % 3]);
    }
    int i = 0;
    while (dom >= (unsigned)domain_cut[i]) i++;
    return snprintf(out, cap, "%s@%s", local, domains[i]);
}

/* Render the next event as one JSON line (no newline) into out; returns its length. */
static size_t gen_next(gen *g, char *out, size_t cap) {
    const opts *o = g->o;
    rng *r = &g->r;
    uint64_t k = 0;
    int attacker = 0;
    if (g->n < g->seed_n) {
        k = (g->n * PERM_MUL + 7) % o->keys;
    } else {
        uint64_t m = g->n - g->seed_n;   /* index in the main phase */
        if (g->attack && g->attack_done < g->attack) {
            if (g->o->burst) attacker = m >= g->main_total / 2;
            else {
                uint64_t every = g->main_total / g->attack;
                attacker = every && m % every == every / 2;
            }
        }
        if (attacker) g->attack_done++;
        else if (runif(r) < o->hot_share) k = rbelow(r, o->hot_keys);
        else k = rbelow(r, o->keys);
    }
    g->last_attack = attacker;
    g->n++;
    g->tsd += -log(1.0 - runif(r)) * g->gap_ms;   /* Poisson arrivals */
    uint64_t h = mix64(k ^ (o->seed * 0x9E3779B97F4A7C15ULL));
    int hot = !attacker && k < o->hot_keys;
    const char *type = g->force_type;
    if (attacker) type = "login";
    if (!type) {
        int x = (int)rbelow(r, 1000), i = 0;
        while (x >= types[i].permille) x -= types[i++].permille;
        type = types[i].name;
    }
    char user[32], amount[48] = "", device[16], email[96], ip[24];
    if (attacker) snprintf(user, sizeof user, "u_attacker");
    else snprintf(user, sizeof user, "u%07" PRIu64, k);
    if (strcmp(type, "tx") == 0) {
        double a = exp(3.5 + 1.2 * rnormal(r));   /* log-normal: median 33, a long tail */
        if (a > 50000) a = 50000;
        snprintf(amount, sizeof amount, "\"amount\":%.2f,", a);
    }
    const char *country = runif(r) < 0.05 ? countries[rbelow(r, 20)] : countries[h % 20];
    uint32_t dev = runif(r) < 0.03 ? (uint32_t)rnext(r) : (uint32_t)(h >> 20);
    snprintf(device, sizeof device, "d%08x", dev);
    render_email(email, sizeof email, h, r, strcmp(type, "change_email") == 0);
    uint64_t iph = runif(r) < 0.1 ? rnext(r) : h >> 8;
    snprintf(ip, sizeof ip, "%u.%u.%u.%u", (unsigned)(iph >> 8 & 255) | 1, (unsigned)(iph >> 16 & 255),
             (unsigned)(iph >> 24 & 255), (unsigned)(iph >> 32 & 255));
    const char *ua = hot || attacker ? bot_uas[h % 3] : uas[(h >> 33) % 8];
    int n = snprintf(out, cap,
                     "{\"id\":\"e%" PRIu64 "\",\"ts\":%" PRId64 ",\"user\":\"%s\",\"type\":\"%s\",%s"
                     "\"country\":\"%s\",\"device\":\"%s\",\"email\":\"%s\",\"ip\":\"%s\",\"ua\":\"%s\"}",
                     g->n, (int64_t)g->tsd, user, type, amount, country, device, email, ip, ua);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* ---- rulesets --------------------------------------------------------------------- */

static vigil_ruleset *report_load(vigil_status s, vigil_ruleset *rs, const vigil_error *errs, int nerrs,
                                  const char *what) {
    if (s == VIGIL_OK) return rs;
    fprintf(stderr, "bench_synth: %s: %s\n", what, vigil_status_str(s));
    for (int i = 0; i < nerrs; i++) {
        char b[1024];
        vigil_error_format(&errs[i], b, sizeof b);
        fprintf(stderr, "  %s\n", b);
    }
    exit(1);
}

static vigil_ruleset *load_dir(const char *path) {
    vigil_ruleset *rs = NULL;
    vigil_error errs[8];
    int nerrs = 0;
    vigil_status s = vigil_rules_load(path, NULL, &rs, errs, 8, &nerrs);
    return report_load(s, rs, errs, nerrs, path);
}

static vigil_ruleset *load_text(const char *name, const char *src) {
    vigil_ruleset *rs = NULL;
    vigil_error errs[8];
    int nerrs = 0;
    vigil_status s = vigil_rules_load_string(name, src, strlen(src), NULL, &rs, errs, 8, &nerrs);
    return report_load(s, rs, errs, nerrs, name);
}

/* A growing string. */
typedef struct sbuf { char *p; size_t n, cap; } sbuf;
static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "bench_synth: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Append every *.lua of dir (sorted) to b: two rule directories compiled as one ruleset. */
static void cat_dir(sbuf *b, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "bench_synth: cannot open %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    char *names[64];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 64) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".lua") == 0) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "bench_synth: cannot read %s\n", path);
            exit(1);
        }
        char buf[8192];
        size_t k;
        while ((k = fread(buf, 1, sizeof buf, f)) > 0) sb_add(b, buf, k);
        sb_add(b, "\n", 1);
        fclose(f);
        free(names[i]);
    }
}

/* The regexes of the regex-cost mode: the first five are those of
 * mix/regex.lua; the rest are the kind of email tests fraud teams write
 * (disposable and free-mail domain lists, local-part shapes, TLDs). All
 * on the same field: one Hyperscan database, one scan per event. */
static const struct { const char *re, *flags; } regexes[50] = {
    {"@(mailinator|guerrillamail|10minutemail|trashmail|yopmail)\\.(com|net|org)$", ""},
    {"^[a-z]{1,3}[0-9]{6,}@", ""},
    {"\\+[a-z0-9]{4,}@", ""},
    {"^(admin|root|test|support)[._-]?[0-9]*@", "i"},
    {"\\.(ru|tk|xyz|top)$", ""},
    {"@(tempmail|throwaway|fakeinbox|sharklasers)\\.", ""},
    {"@(getnada|dispostable|maildrop|mintemail)\\.(com|cc)$", ""},
    {"^[0-9]+@", ""},
    {"[0-9]{8,}@", ""},
    {"^[a-z]\\.[a-z]+@", ""},
    {"^(info|sales|contact|billing)@", "i"},
    {"@[a-z0-9-]+\\.(co\\.uk|com\\.br|co\\.in)$", ""},
    {"\\.(zip|mov|click|link)$", ""},
    {"^.{32,}@", ""},
    {"^[^@]{1,2}@", ""},
    {"(qq|xx|zz)[0-9]", ""},
    {"@(protonmail|proton|tutanota)\\.(me|com)$", ""},
    {"^[a-z]+_[a-z]+[0-9]{4}@", ""},
    {"^[a-z]+\\.[a-z]+[0-9]{2}@gmail\\.com$", ""},
    {"(test|demo|sample)[0-9]*@", "i"},
    {"@[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}$", ""},
    {"\\.\\.", ""},
    {"^[._-]", ""},
    {"[._-]@", ""},
    {"@(yandex|rambler|mail)\\.(ru|com)$", ""},
    {"@(163|126|qq|sina)\\.(com|cn)$", ""},
    {"^[a-z]{12,}@", ""},
    {"(bitcoin|crypto|btc|wallet)", "i"},
    {"(casino|bet|poker|lotto)", "i"},
    {"(free|win|prize|bonus)[0-9]*@", "i"},
    {"@outlook\\.[a-z]{2}$", ""},
    {"@hotmail\\.(fr|de|it|es)$", ""},
    {"\\+(promo|spam|shop|test)[0-9]*@", ""},
    {"^[a-z]+[0-9]{3}[a-z]+@", ""},
    {"[aeiou]{4}", ""},
    {"[bcdfghjklmnpqrstvwxz]{6}", ""},
    {"@[a-z]+mail\\.(net|org)$", ""},
    {"\\.(info|biz|club|online)$", ""},
    {"^(no-?reply|donotreply)@", "i"},
    {"@(example|test|invalid)\\.", ""},
    {"^[a-z0-9]{20,}@", ""},
    {"^user[0-9]+@", ""},
    {"^(anna|john|maria)\\.", ""},
    {"(smith|garcia|muller)[0-9]{2}@", ""},
    {"@gmx\\.(de|net|at)$", ""},
    {"@(web|t-online)\\.de$", ""},
    {"@(orange|free|laposte)\\.fr$", ""},
    {"@(libero|virgilio|alice)\\.it$", ""},
    {"@(wp|o2|interia)\\.pl$", ""},
    {"@[a-z0-9-]{25,}\\.", ""},
};

/* n window rules on `email`: a regex each, or (literal) an equality with an
 * address that never occurs — the same rules without any regex. */
static char *regex_rules(int n, int literal) {
    sbuf b = {0};
    sb_printf(&b, "-- generated by bench_synth --mode regex: %d rules, %s\n", n,
              literal ? "a literal equality each (no regex)" : "one regex each on email");
    for (int i = 0; i < n; i++) {
        if (literal)
            sb_printf(&b, "rule { name = \"lit_%02d\", key = \"user\", where = { email = \"nobody%02d@example.invalid\" },\n"
                          "       window = sliding(\"1h\"), when = ge(count(), 3), suppress = \"1h\" }\n", i, i);
        else
            sb_printf(&b, "rule { name = \"re_%02d\", key = \"user\", where = { email = matches([==[%s]==], \"%s\") },\n"
                          "       window = sliding(\"1h\"), when = ge(count(), 3), suppress = \"1h\" }\n",
                      i, regexes[i].re, regexes[i].flags);
    }
    return b.p;
}

/* vigil_engine_warm (prefetch a batch's key states) exists in newer engines:
 * a weak reference, so that this file also builds against one without it.
 * When present it is called per 64 events before feeding them, as replay does. */
void vigil_engine_warm(vigil_engine *eng, vigil_event *const *evs, int n) __attribute__((weak));
#define WARM_BATCH 64

/* ---- running a stream ------------------------------------------------------------- */

typedef struct phase {
    uint64_t n;                       /* events */
    uint64_t wall[3], cpu[3];         /* ns in decode, feed, release: CLOCK_MONOTONIC and
                                         CLOCK_THREAD_CPUTIME_ID (immune to other processes
                                         taking the core away, not to their cache use) */
    long nivcsw;                      /* involuntary context switches during the phase */
    long minflt;                      /* page faults (first touch of new heap pages) */
    uint64_t user_us, sys_us;         /* getrusage of the whole phase, event rendering included */
    uint64_t errors;
} phase;

typedef struct runner {
    const opts *o;
    char *lines;                      /* batch * LINE_CAP bytes */
    size_t *len;
    vigil_event **evs;
    unsigned char *attack;
    hist *lat, *lat_attack;           /* per-event feed latency, or NULL */
    hist *lat_cpu;                    /* the same in thread CPU time (no preemption), or NULL */
} runner;

#define LINE_CAP 1024

/* Alerts are counted by the engine (stats, per rule); nothing to do here. */
static void on_alert(void *ud, const vigil_alert *a) {
    (void)ud;
    (void)a;
}

static void runner_init(runner *rn, const opts *o) {
    memset(rn, 0, sizeof *rn);
    rn->o = o;
    rn->lines = malloc((size_t)o->batch * LINE_CAP);
    rn->len = calloc((size_t)o->batch, sizeof *rn->len);
    rn->evs = calloc((size_t)o->batch, sizeof *rn->evs);
    rn->attack = calloc((size_t)o->batch, 1);
    if (!rn->lines || !rn->len || !rn->evs || !rn->attack) {
        fprintf(stderr, "bench_synth: out of memory\n");
        exit(1);
    }
    memset(rn->lines, 0, (size_t)o->batch * LINE_CAP);   /* touch it now: RSS baselines include it */
}

static void runner_free(runner *rn) {
    free(rn->lines);
    free(rn->len);
    free(rn->evs);
    free(rn->attack);
}

/* Feed n events of g through rs (decode) and eng (feed; NULL: decode only). */
static void run(runner *rn, gen *g, vigil_ruleset *rs, vigil_engine *eng, uint64_t n, phase *ph) {
    int B = rn->o->batch;
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    for (uint64_t done = 0; done < n;) {
        int b = n - done < (uint64_t)B ? (int)(n - done) : B;
        for (int i = 0; i < b; i++) {   /* not timed */
            rn->len[i] = gen_next(g, rn->lines + (size_t)i * LINE_CAP, LINE_CAP);
            rn->attack[i] = (unsigned char)g->last_attack;
        }
        vigil_error err;
        uint64_t c0 = cpu_ns(), t0 = now_ns();
        for (int i = 0; i < b; i++)
            if (vigil_event_decode_json(rs, NULL, rn->lines + (size_t)i * LINE_CAP, rn->len[i], NULL, 0, &rn->evs[i],
                                        &err) != VIGIL_OK) {
                fprintf(stderr, "bench_synth: decode: %s\n  %.*s\n", err.msg, (int)rn->len[i],
                        rn->lines + (size_t)i * LINE_CAP);
                exit(1);
            }
        uint64_t t1 = now_ns(), c1 = cpu_ns();
        if (eng && !rn->lat) {
            for (int i = 0; i < b; i++) {
                if (vigil_engine_warm && i % WARM_BATCH == 0)
                    vigil_engine_warm(eng, rn->evs + i, b - i < WARM_BATCH ? b - i : WARM_BATCH);
                if (vigil_engine_feed(eng, rn->evs[i], &err) != VIGIL_OK) ph->errors++;
            }
        } else if (eng) {   /* per-event samples: no warm hint, each sample is the event's whole cost */
            for (int i = 0; i < b; i++) {
                uint64_t ca = rn->lat_cpu ? cpu_ns() : 0, a = now_ns();
                vigil_status s = vigil_engine_feed(eng, rn->evs[i], &err);
                uint64_t z = now_ns();
                if (rn->lat_cpu) hadd(rn->lat_cpu, cpu_ns() - ca);
                if (s != VIGIL_OK) ph->errors++;
                hadd(rn->attack[i] && rn->lat_attack ? rn->lat_attack : rn->lat, z - a);
            }
        }
        uint64_t c2 = cpu_ns(), t2 = now_ns();
        for (int i = 0; i < b; i++) vigil_event_release(rn->evs[i]);
        uint64_t t3 = now_ns(), c3 = cpu_ns();
        ph->wall[0] += t1 - t0, ph->wall[1] += t2 - t1, ph->wall[2] += t3 - t2;
        ph->cpu[0] += c1 - c0, ph->cpu[1] += c2 - c1, ph->cpu[2] += c3 - c2;
        ph->n += (uint64_t)b;
        done += (uint64_t)b;
    }
    getrusage(RUSAGE_THREAD, &ru1);
    ph->nivcsw += ru1.ru_nivcsw - ru0.ru_nivcsw;
    ph->minflt += ru1.ru_minflt - ru0.ru_minflt;
    ph->user_us += (uint64_t)((ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000 + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec));
    ph->sys_us += (uint64_t)((ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000 + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec));
}

static double eps(uint64_t n, uint64_t ns) { return ns ? (double)n * 1e9 / (double)ns : 0; }
/* Rates by CPU time of this thread (events per second of one core); the
 * wall-clock rate is printed beside them as a check on contention. */
static double pipeline_eps(const phase *p) { return eps(p->n, p->cpu[0] + p->cpu[1] + p->cpu[2]); }
static double engine_eps(const phase *p) { return eps(p->n, p->cpu[1]); }
static double decode_eps(const phase *p) { return eps(p->n, p->cpu[0] + p->cpu[2]); }
static double pipeline_wall_eps(const phase *p) { return eps(p->n, p->wall[0] + p->wall[1] + p->wall[2]); }
static double cpu_share(const phase *p) {
    uint64_t w = p->wall[0] + p->wall[1] + p->wall[2];
    return w ? (double)(p->cpu[0] + p->cpu[1] + p->cpu[2]) / (double)w : 0;
}

static vigil_engine *new_engine(const opts *o, vigil_ruleset *rs) {
    vigil_engine_opts eo = {.max_runs = o->max_runs};
    vigil_engine *eng = vigil_engine_create(rs, &eo, NULL, on_alert, NULL);
    if (!eng) {
        fprintf(stderr, "bench_synth: vigil_engine_create failed\n");
        exit(1);
    }
    return eng;
}

static void result(const char *name, double v) { printf("RESULT %s %.10g\n", name, v); }

static void print_phase(const char *what, const phase *p) {
    printf("  %-24s %8" PRIu64 " events: pipeline %8.0f ev/s  (decode %.2f + feed %.2f + release %.2f us/event CPU)"
           "; wall %8.0f ev/s, CPU share %.0f %%%s\n",
           what, p->n, pipeline_eps(p), p->cpu[0] / 1e3 / (double)p->n, p->cpu[1] / 1e3 / (double)p->n,
           p->cpu[2] / 1e3 / (double)p->n, pipeline_wall_eps(p), 100 * cpu_share(p), p->errors ? "  ERRORS" : "");
    printf("  %-24s page faults %.2f/event, kernel %.0f %% of the phase's CPU (rendering included)\n", "",
           (double)p->minflt / (double)p->n,
           p->user_us + p->sys_us ? 100.0 * (double)p->sys_us / (double)(p->user_us + p->sys_us) : 0);
}

static void print_stats(const char *what, const vigil_engine *eng) {
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    printf("  %-26s keys %" PRIu64 ", runs %" PRIu64 ", runs_evicted %" PRIu64 ", alerts %" PRIu64 ", late %" PRIu64
           "\n", what, st.keys, st.runs, st.runs_evicted, st.alerts, st.late);
}

static void print_alerts(const vigil_engine *eng, const vigil_ruleset *rs) {
    printf("  alerts by rule:");
    int n = vigil_ruleset_rule_count(rs);
    for (int i = 0; i < n; i++)
        printf("%s%s %" PRIu64, i % 4 ? ", " : "\n    ", vigil_ruleset_rule_name(rs, i),
               vigil_engine_rule_alerts(eng, i));
    printf("\n");
}

static const char *path_in(const opts *o, const char *sub) {
    static char buf[4][4096];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 4096, "%s/%s", o->rules_dir, sub);
    return p;
}

static void describe(const opts *o, uint64_t main_events) {
    printf("stream: %" PRIu64 " keys (seed phase: one event each), then %" PRIu64 " events: %.0f %% on %" PRIu64
           " hot keys, rest uniform; %.0f events/s of event time; seed %" PRIu64 "; batch %d\n",
           o->keys, main_events, o->hot_share * 100, o->hot_keys, o->rate, o->seed, o->batch);
    printf("engine: vigil_engine_warm %s\n", vigil_engine_warm ? "called per 64 events (this engine has it)"
                                                              : "not in this engine");
}

/* ---- modes -------------------------------------------------------------------------- */

static void mode_mix(const opts *o) {
    uint64_t t0 = now_ns();
    vigil_ruleset *rs = load_dir(path_in(o, "mix"));
    printf("mix: %d rules from %s (compiled in %.1f ms)\n", vigil_ruleset_rule_count(rs), path_in(o, "mix"),
           (now_ns() - t0) / 1e6);
    describe(o, o->events);
    runner rn;
    runner_init(&rn, o);
    gen g;
    /* decode only: the same lines, no engine */
    phase dseed = {0}, dmain = {0};
    gen_init(&g, o, o->keys, o->events, 0);
    run(&rn, &g, rs, NULL, o->keys, &dseed);
    run(&rn, &g, rs, NULL, o->events, &dmain);
    /* the engine */
    vigil_engine *eng = new_engine(o, rs);
    phase seed = {0}, mainp = {0};
    gen_init(&g, o, o->keys, o->events, 0);
    run(&rn, &g, rs, eng, o->keys, &seed);
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    uint64_t alerts_seed = st.alerts;
    run(&rn, &g, rs, eng, o->events, &mainp);
    vigil_engine_get_stats(eng, &st);
    uint64_t alerts_main = st.alerts - alerts_seed;
    print_phase("seed (cold: new keys)", &seed);
    print_phase("main (warm)", &mainp);
    printf("  %-26s engine only %9.0f ev/s (seed %.0f), decode only %9.0f ev/s\n", "", engine_eps(&mainp),
           engine_eps(&seed), decode_eps(&dmain));
    print_stats("after main phase", eng);
    uint64_t a0 = now_ns();
    vigil_engine_advance(eng, INT64_MAX);
    uint64_t a1 = now_ns();
    vigil_engine_get_stats(eng, &st);
    printf("  end of input (advance to +inf: absences, expiries): %.1f ms; alerts: %" PRIu64 " in seed, %" PRIu64
           " in main, %" PRIu64 " total\n", (a1 - a0) / 1e6, alerts_seed, alerts_main, st.alerts);
    print_alerts(eng, rs);
    printf("  VmRSS %.1f MiB, VmHWM %.1f MiB\n", mib((double)rss_now()), mib((double)proc_status("VmHWM")));
    result("mix_pipeline_eps", pipeline_eps(&mainp));
    result("mix_engine_eps", engine_eps(&mainp));
    result("mix_decode_eps", decode_eps(&dmain));
    result("mix_seed_pipeline_eps", pipeline_eps(&seed));
    result("mix_seed_engine_eps", engine_eps(&seed));
    result("mix_alerts", (double)st.alerts);
    result("mix_alerts_main", (double)alerts_main);
    int fired = 0;
    for (int i = 0; i < vigil_ruleset_rule_count(rs); i++) fired += vigil_engine_rule_alerts(eng, i) > 0;
    result("mix_rules_fired", fired);
    result("mix_rules", vigil_ruleset_rule_count(rs));
    result("mix_keys", (double)o->keys);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    runner_free(&rn);
}

static int hs_count(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *ctx) {
    (void)id, (void)from, (void)to, (void)flags;
    ++*(uint64_t *)ctx;
    return 0;
}

/* Hyperscan alone: the emails of the stream's first n events scanned by one
 * database of the first k regexes, compiled as the engine compiles them
 * (hs_compile_multi, block mode, SINGLEMATCH | ALLOWEMPTY [| CASELESS]).
 * Returns CPU ns per scan. */
static double hs_only(const opts *o, int k, uint64_t n, uint64_t *matches) {
    const char *ex[50];
    unsigned fl[50], ids[50];
    for (int i = 0; i < k; i++) {
        ex[i] = regexes[i].re;
        fl[i] = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY | (regexes[i].flags[0] == 'i' ? HS_FLAG_CASELESS : 0);
        ids[i] = (unsigned)i;
    }
    hs_database_t *db = NULL;
    hs_compile_error_t *ce = NULL;
    hs_scratch_t *scr = NULL;
    if (hs_compile_multi(ex, fl, ids, (unsigned)k, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS ||
        hs_alloc_scratch(db, &scr) != HS_SUCCESS) {
        fprintf(stderr, "bench_synth: hs_compile_multi: %s\n", ce ? ce->message : "scratch");
        exit(1);
    }
    /* the emails, one after another (rendering not timed) */
    char *buf = malloc((size_t)n * 96), line[LINE_CAP];
    uint32_t *off = malloc(((size_t)n + 1) * sizeof *off);
    gen g;
    gen_init(&g, o, 0, n, 0);
    size_t at = 0;
    for (uint64_t i = 0; i < n; i++) {
        gen_next(&g, line, sizeof line);
        const char *e = strstr(line, "\"email\":\"") + 9, *q = strchr(e, '"');
        off[i] = (uint32_t)at;
        memcpy(buf + at, e, (size_t)(q - e));
        at += (size_t)(q - e);
    }
    off[n] = (uint32_t)at;
    uint64_t c0 = cpu_ns();
    for (uint64_t i = 0; i < n; i++)
        hs_scan(db, buf + off[i], off[i + 1] - off[i], 0, scr, hs_count, matches);
    uint64_t c1 = cpu_ns();
    free(buf);
    free(off);
    hs_free_scratch(scr);
    hs_free_database(db);
    return (double)(c1 - c0) / (double)n;
}

static void mode_regex(const opts *o) {
    static const struct { int n, literal; const char *name; } v[] = {
        {1, 1, "1_literal"}, {1, 0, "1_regex"}, {50, 1, "50_literal"}, {50, 0, "50_regex"}};
    if (o->dump_rules) {
        for (int i = 0; i < 4; i++) {
            char *src = regex_rules(v[i].n, v[i].literal);
            printf("%s\n", src);
            free(src);
        }
        return;
    }
    printf("regex: window rules on `email` (where = { email = matches(re) } or = \"literal\"), 1 h count >= 3\n");
    describe(o, o->events);
    runner rn;
    runner_init(&rn, o);
    double *ns_per = shared_results();
    for (int i = 0; i < 4; i++) {
        if (!fork_pass()) continue;
        char *src = regex_rules(v[i].n, v[i].literal);
        vigil_ruleset *rs = load_text(v[i].name, src);
        free(src);
        vigil_engine *eng = new_engine(o, rs);
        gen g;
        gen_init(&g, o, o->keys, o->events, 0);
        phase seed = {0}, mainp = {0};
        run(&rn, &g, rs, eng, o->keys, &seed);
        run(&rn, &g, rs, eng, o->events, &mainp);
        vigil_engine_stats st;
        vigil_engine_get_stats(eng, &st);
        ns_per[i] = (double)mainp.cpu[1] / (double)mainp.n;
        printf("  %-11s %2d rules: pipeline %9.0f ev/s, engine only %9.0f ev/s (%.0f ns/event in feed), "
               "alerts %" PRIu64 "\n", v[i].name, v[i].n, pipeline_eps(&mainp), engine_eps(&mainp), ns_per[i],
               st.alerts);
        char key[64];
        snprintf(key, sizeof key, "regex_%s_pipeline_eps", v[i].name);
        result(key, pipeline_eps(&mainp));
        snprintf(key, sizeof key, "regex_%s_engine_eps", v[i].name);
        result(key, engine_eps(&mainp));
        end_pass();
    }
    printf("  cost of the regexes (regex - literal, same rules): 1 regex %+.0f ns/event, 50 regexes %+.0f ns/event\n"
           "  (the difference includes the window work of the events that match: more regexes, more matches)\n",
           ns_per[1] - ns_per[0], ns_per[3] - ns_per[2]);
    result("regex_scan_ns_1", ns_per[1] - ns_per[0]);
    result("regex_scan_ns_50", ns_per[3] - ns_per[2]);
    uint64_t m1 = 0, m50 = 0;
    double s1 = hs_only(o, 1, 1000000, &m1), s50 = hs_only(o, 50, 1000000, &m50);
    printf("  Hyperscan alone, 1 M emails of the stream, one database: 1 regex %.0f ns/scan (%.2f %% match), "
           "50 regexes %.0f ns/scan (%.2f matches/email)\n", s1, (double)m1 / 1e4, s50, (double)m50 / 1e6);
    result("regex_hs_ns_1", s1);
    result("regex_hs_ns_50", s50);
    runner_free(&rn);
}

static void print_hist(const char *what, const hist *h) {
    printf("  %-22s n=%-9" PRIu64 " mean %6.2f  p50 %6.2f  p90 %6.2f  p99 %6.2f  p99.9 %7.2f  p99.99 %8.2f  max %9.2f us\n",
           what, h->n, h->n ? (double)h->sum / (double)h->n / 1e3 : 0, hpct(h, 50) / 1e3, hpct(h, 90) / 1e3,
           hpct(h, 99) / 1e3, hpct(h, 99.9) / 1e3, hpct(h, 99.99) / 1e3, (double)h->max / 1e3);
}

static void mode_latency(const opts *o) {
    vigil_ruleset *rs = load_dir(path_in(o, "mix"));
    printf("latency: each vigil_engine_feed timed with CLOCK_MONOTONIC (%d rules of mix/)\n",
           vigil_ruleset_rule_count(rs));
    describe(o, o->events);
    /* the cost of the clock itself: the median gap between two back-to-back reads */
    hist *hc = calloc(1, sizeof *hc);
    for (int i = 0; i < 1000000; i++) {
        uint64_t a = now_ns();
        hadd(hc, now_ns() - a);
    }
    double clock_ns = hpct(hc, 50);
    free(hc);
    printf("  clock_gettime(CLOCK_MONOTONIC): %.0f ns between back-to-back reads (median; in every sample)\n"
           "  vigil_engine_warm is not called here: each sample is the whole cost of its event\n", clock_ns);
    runner rn;
    runner_init(&rn, o);
    hist *hs = calloc(1, sizeof *hs), *hm = calloc(1, sizeof *hm), *hcpu = calloc(1, sizeof *hcpu);
    vigil_engine *eng = new_engine(o, rs);
    gen g;
    gen_init(&g, o, o->keys, o->events, 0);
    phase seed = {0}, mainp = {0};
    rn.lat = hs;
    run(&rn, &g, rs, eng, o->keys, &seed);
    rn.lat = hm;
    rn.lat_cpu = hcpu;   /* main phase only: each wall sample also gets its thread CPU time */
    run(&rn, &g, rs, eng, o->events, &mainp);
    print_hist("seed (new keys)", hs);
    print_hist("main (warm)", hm);
    print_hist("main, thread CPU time", hcpu);
    printf("  (the CPU-time samples leave out the time the thread was preempted; they include two\n"
           "   CLOCK_MONOTONIC reads, ~%.0f ns, and the kernel's page faults)\n", clock_ns);
    printf("  involuntary context switches: %ld in the seed phase, %ld in the main phase\n", seed.nivcsw,
           mainp.nivcsw);

    result("lat_p50_us", hpct(hm, 50) / 1e3);
    result("lat_p99_us", hpct(hm, 99) / 1e3);
    result("lat_p999_us", hpct(hm, 99.9) / 1e3);
    result("lat_max_us", (double)hm->max / 1e3);
    result("lat_seed_p99_us", hpct(hs, 99) / 1e3);
    result("lat_seed_max_us", (double)hs->max / 1e3);
    result("lat_clock_ns", clock_ns);
    result("lat_cpu_p99_us", hpct(hcpu, 99) / 1e3);
    result("lat_cpu_p999_us", hpct(hcpu, 99.9) / 1e3);
    result("lat_cpu_max_us", (double)hcpu->max / 1e3);
    result("lat_main_ivcsw", (double)mainp.nivcsw);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    free(hs);
    free(hm);
    free(hcpu);
    runner_free(&rn);
}

static void mode_memory(const opts *o) {
    vigil_ruleset *rs = load_dir(path_in(o, "velocity"));
    printf("memory: %s (one sliding 1 h count), %" PRIu64 " keys, one tx event each, then idle\n",
           path_in(o, "velocity"), o->keys);
    runner rn;
    runner_init(&rn, o);
    vigil_engine *eng = new_engine(o, rs);
    gen g;
    gen_init(&g, o, o->keys, 0, 0);
    g.force_type = "tx";
    /* baseline: ruleset, engine and batch buffers allocated, no key yet */
    uint64_t r0 = rss_now();
    int64_t h0 = heap_now();
    phase ph = {0};
    run(&rn, &g, rs, eng, o->keys, &ph);
    uint64_t r1 = rss_now();
    int64_t h1 = heap_now();
    vigil_engine_advance(eng, (int64_t)g.tsd + 2 * 3600 * 1000);   /* two hours later: the keys are idle */
    uint64_t r2 = rss_now();
    int64_t h2 = heap_now();
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    double k = (double)st.keys;
    printf("  keys with state %" PRIu64 "; VmRSS %.1f -> %.1f MiB (watermark 2 h later: %.1f MiB)\n", st.keys,
           mib((double)r0), mib((double)r1), mib((double)r2));
    printf("  per idle key (its entry still in the window): RSS %.0f bytes, malloc'd heap %.0f bytes\n",
           (double)(r1 - r0) / k, h0 >= 0 ? (double)(h1 - h0) / k : -1.0);
    printf("  (engine stats count keys and runs, not bytes; heap = glibc mallinfo2 in-use bytes, with malloc's\n"
           "   chunk headers and the key table; RSS also counts pages malloc keeps after a free)\n");
    print_phase("feeding", &ph);
    result("mem_idle_key_rss_bytes", (double)(r1 - r0) / k);
    result("mem_idle_key_heap_bytes", h0 >= 0 ? (double)(h1 - h0) / k : -1);
    result("mem_keys", k);
    /* expiry: the engine drops an idle key once its horizon (here 1 h) has
     * passed, sweeping a few table slots per event; keep feeding the hot keys
     * (2 h later) until the sweep has been round the table */
    opts o2 = *o;
    o2.hot_share = 1.0;
    gen g2;
    gen_init(&g2, &o2, 0, 0, 0);
    g2.force_type = "tx";
    g2.tsd = g.tsd + 2 * 3600 * 1000;
    uint64_t fed = 0;
    phase ph2 = {0};
    while (fed < 4 * o->keys) {
        run(&rn, &g2, rs, eng, 262144, &ph2);
        fed += 262144;
        vigil_engine_get_stats(eng, &st);
        if (st.keys <= o->hot_keys) break;
    }
    uint64_t r3 = rss_now();
    int64_t h3 = heap_now();
    printf("  then %" PRIu64 " events of the %" PRIu64 " hot keys, 2 h later: keys %" PRIu64 " (expired %" PRIu64
           "), heap %.1f MiB over the baseline, VmRSS %.1f MiB\n", fed, o->hot_keys, st.keys, st.keys_expired,
           mib((double)(h3 - h0)), mib((double)r3));
    result("mem_after_expiry_keys", (double)st.keys);
    result("mem_after_expiry_heap_mib", mib((double)(h3 - h0)));
    result("mem_after_expiry_rss_mib", mib((double)r3));
    (void)h2;
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    runner_free(&rn);
}

static void mode_growth(const opts *o) {
    vigil_ruleset *rs = load_dir(path_in(o, "mix"));
    uint64_t total = o->events, seed_n = o->keys < total ? o->keys : total;
    printf("growth: %d rules of mix/, %" PRIu64 " events in all (the first %" PRIu64
           " seed every key once), checkpoint every 1 M\n", vigil_ruleset_rule_count(rs), total, seed_n);
    describe(o, total - seed_n);
    runner rn;
    runner_init(&rn, o);
    vigil_engine *eng = new_engine(o, rs);
    gen g;
    gen_init(&g, o, seed_n, total - seed_n, 0);
    uint64_t r0 = rss_now();
    int64_t h0 = heap_now();
    printf("  baseline VmRSS %.1f MiB, heap %.1f MiB\n", mib((double)r0), mib((double)h0));
    printf("  %10s %10s %10s %9s %9s %12s %9s %9s %11s %12s\n", "events", "RSS MiB", "heap MiB", "keys", "runs",
           "runs_evicted", "expired", "alerts", "seg ev/s", "event time");
    uint64_t step = 1000000, done = 0;
    while (done < total) {
        if (o->max_rss_gib > 0 && (double)rss_now() > o->max_rss_gib * 1073741824.0) {
            printf("  stopped: VmRSS over --max-rss-gib %.1f\n", o->max_rss_gib);
            result("growth_stopped_at_events", (double)done);
            break;
        }
        uint64_t n = total - done < step ? total - done : step;
        phase ph = {0};
        run(&rn, &g, rs, eng, n, &ph);
        done += n;
        vigil_engine_stats st;
        vigil_engine_get_stats(eng, &st);
        uint64_t r = rss_now();
        int64_t h = heap_now();
        printf("  %10" PRIu64 " %10.1f %10.1f %9" PRIu64 " %9" PRIu64 " %12" PRIu64 " %9" PRIu64 " %9" PRIu64
               " %11.0f %10.2f h\n",
               done, mib((double)r), mib((double)h), st.keys, st.runs, st.runs_evicted, st.keys_expired, st.alerts,
               pipeline_eps(&ph), (g.tsd - T0_MS) / 3600e3);
        fflush(stdout);
        /* "1M" once; "end" at every checkpoint (the last one printed wins) */
        for (int w = done == step ? 0 : 1; w < 2; w++) {
            const char *at = w == 0 ? "1M" : "end";
            char key[64];
#define GRES(name, v) (snprintf(key, sizeof key, "growth_%s_%s", at, name), result(key, v))
            GRES("events", (double)done);
            GRES("rss_mib", mib((double)r));
            GRES("heap_mib", mib((double)h));
            GRES("keys", (double)st.keys);
            GRES("runs", (double)st.runs);
            GRES("runs_evicted", (double)st.runs_evicted);
            GRES("seg_eps", pipeline_eps(&ph));
#undef GRES
        }
    }
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    runner_free(&rn);
}

/* Append one file to b. */
static void cat_file(sbuf *b, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "bench_synth: cannot read %s\n", path);
        exit(1);
    }
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) sb_add(b, buf, k);
    sb_add(b, "\n", 1);
    fclose(f);
}

/* The normal stream, then the same with the attacker, through rs. */
static void worst_pair(const opts *o, runner *rn, vigil_ruleset *rs, const char *label) {
    double *rate = shared_results();
    for (int pass = 0; pass < 2; pass++) {
        if (!fork_pass()) continue;
        hist *hn = calloc(1, sizeof *hn), *ha = calloc(1, sizeof *ha);
        vigil_engine *eng = new_engine(o, rs);
        gen g;
        gen_init(&g, o, o->keys, o->events, pass ? o->attack : 0);
        phase seed = {0}, mainp = {0};
        run(rn, &g, rs, eng, o->keys, &seed);
        rn->lat = hn;
        rn->lat_attack = ha;
        run(rn, &g, rs, eng, o->events, &mainp);
        rn->lat = rn->lat_attack = NULL;
        vigil_engine_stats st;
        vigil_engine_get_stats(eng, &st);
        rate[pass] = pipeline_eps(&mainp);
        printf(" %s, %s:\n", label, pass ? "with the attacker" : "normal stream");
        print_phase("main", &mainp);
        printf("  %-24s engine only %8.0f ev/s\n", "", engine_eps(&mainp));
        print_stats("after main phase", eng);
        print_hist("feed, other events", hn);
        if (pass) print_hist("feed, attacker events", ha);
        char key[96];
#define WRES(name, v) (snprintf(key, sizeof key, "worst_%s_%s_%s", label, pass ? "attack" : "normal", name), result(key, v))
        WRES("pipeline_eps", pipeline_eps(&mainp));
        WRES("engine_eps", engine_eps(&mainp));
        WRES("runs", (double)st.runs);
        WRES("runs_evicted", (double)st.runs_evicted);
        WRES("p99_us", hpct(hn, 99) / 1e3);
        if (pass) {
            WRES("attacker_p50_us", hpct(ha, 50) / 1e3);
            WRES("attacker_p99_us", hpct(ha, 99) / 1e3);
            WRES("attacker_max_us", (double)ha->max / 1e3);
            WRES("attacker_events", (double)ha->n);
        }
#undef WRES
        end_pass();
    }
    printf("  %s: throughput with the attacker = %.1f %% of the normal stream's\n", label, 100 * rate[1] / rate[0]);
    /* The attacker's own runs: the engine has no per-key count (and
     * vigil_engine_explain_key is declared but not implemented), so feed its
     * events alone, spaced as in the stream, and read the stats after each. */
    {
        vigil_engine *eng = new_engine(o, rs);
        gen g;
        gen_init(&g, o, 0, o->attack, o->attack);
        g.gap_ms *= (double)o->events / (double)o->attack;
        char line[LINE_CAP];
        uint64_t max_runs_seen = 0;
        vigil_engine_stats st;
        for (uint64_t i = 0; i < o->attack; i++) {
            size_t n = gen_next(&g, line, sizeof line);
            vigil_event *ev;
            vigil_error err;
            if (vigil_event_decode_json(rs, NULL, line, n, NULL, 0, &ev, &err) != VIGIL_OK) exit(1);
            vigil_engine_feed(eng, ev, &err);
            vigil_event_release(ev);
            vigil_engine_get_stats(eng, &st);
            if (st.runs > max_runs_seen) max_runs_seen = st.runs;
        }
        printf("  %s: the attacker's events alone (same spacing): its runs peak at %" PRIu64 " (%d rules x max_runs %u"
               " = %u at most), %" PRIu64 " evicted\n", label, max_runs_seen, vigil_ruleset_rule_count(rs),
               o->max_runs ? o->max_runs : 64, (unsigned)vigil_ruleset_rule_count(rs) * (o->max_runs ? o->max_runs : 64),
               st.runs_evicted);
        char key[96];
        snprintf(key, sizeof key, "worst_%s_attacker_runs_max", label);
        result(key, (double)max_runs_seen);
        snprintf(key, sizeof key, "worst_%s_attacker_runs_evicted", label);
        result(key, (double)st.runs_evicted);
        vigil_engine_destroy(eng);
    }
    char key[96];
    snprintf(key, sizeof key, "worst_%s_ratio_pct", label);
    result(key, 100 * rate[1] / rate[0]);
}

/* Two rulesets: the whole mix + worst/ (the attacker also hits every window
 * rule), and the mix's patterns + worst/ (partial matches only). */
static void mode_worst(const opts *o) {
    printf("worst: + worst/ (3 patterns that start at every login and never complete, within 6 h), max_runs %u\n",
           o->max_runs ? o->max_runs : 64);
    describe(o, o->events);
    printf("  attack: %" PRIu64 " login events of key u_attacker %s the main phase (same total events);\n"
           "  per-event feed latency sampled in both passes (no warm hint), attacker events apart\n",
           o->attack, o->burst ? "in one burst in the middle of" : "spread evenly through");
    runner rn;
    runner_init(&rn, o);
    for (int v = 0; v < 2; v++) {
        sbuf src = {0};
        if (v == 0) cat_file(&src, path_in(o, "mix/patterns.lua"));
        else cat_dir(&src, path_in(o, "mix"));
        cat_dir(&src, path_in(o, "worst"));
        vigil_ruleset *rs = load_text(v == 0 ? "patterns+worst" : "mix+worst", src.p);
        free(src.p);
        printf("%s: %d rules (%s + worst/)\n", v == 0 ? "patterns" : "full", vigil_ruleset_rule_count(rs),
               v == 0 ? "mix/patterns.lua: the 8 patterns of the mix" : "all 20 rules of mix/");
        worst_pair(o, &rn, rs, v == 0 ? "patterns" : "full");
        vigil_ruleset_release(rs);
    }
    runner_free(&rn);
}

int main(int argc, char **argv) {
    opts o = {.rules_dir = "bench/rules_synth", .events = 0, .keys = 1000000, .seed = 42, .attack = UINT64_MAX,
              .hot_share = 0.05, .rate = 1000, .hot_keys = 1000, .batch = 1024, .max_rss_gib = 12};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--burst") == 0) o.burst = 1;
        else if (strcmp(a, "--dump-rules") == 0) o.dump_rules = 1;
        else if (!v) usage();
        else if (strcmp(a, "--mode") == 0) o.mode = v, i++;
        else if (strcmp(a, "--rules-dir") == 0) o.rules_dir = v, i++;
        else if (strcmp(a, "--events") == 0) o.events = parse_count(v), i++;
        else if (strcmp(a, "--keys") == 0) o.keys = parse_count(v), i++;
        else if (strcmp(a, "--hot-keys") == 0) o.hot_keys = parse_count(v), i++;
        else if (strcmp(a, "--seed") == 0) o.seed = parse_count(v), i++;
        else if (strcmp(a, "--attack") == 0) o.attack = parse_count(v), i++;
        else if (strcmp(a, "--batch") == 0) o.batch = (int)parse_count(v), i++;
        else if (strcmp(a, "--max-runs") == 0) o.max_runs = (uint32_t)parse_count(v), i++;
        else if (strcmp(a, "--hot-share") == 0) o.hot_share = parse_double(v), i++;
        else if (strcmp(a, "--rate") == 0) o.rate = parse_double(v), i++;
        else if (strcmp(a, "--max-rss-gib") == 0) o.max_rss_gib = parse_double(v), i++;
        else usage();
    }
    if (!o.mode) usage();
    if (!o.events) o.events = strcmp(o.mode, "growth") == 0 ? 10000000 : 1000000;
    if (o.attack == UINT64_MAX) o.attack = strcmp(o.mode, "worst") == 0 ? 10000 : 0;   /* sample: none unless asked */
    if (o.hot_keys > o.keys) o.hot_keys = o.keys;
    if (o.keys < 1 || o.hot_keys < 1 || o.batch < 1 || o.batch > 65536 || o.rate <= 0 ||
        o.hot_share > 1 || (o.attack && o.attack > o.events))
        usage();
    if (strcmp(o.mode, "mix") == 0) mode_mix(&o);
    else if (strcmp(o.mode, "regex") == 0) mode_regex(&o);
    else if (strcmp(o.mode, "latency") == 0) mode_latency(&o);
    else if (strcmp(o.mode, "memory") == 0) mode_memory(&o);
    else if (strcmp(o.mode, "growth") == 0) mode_growth(&o);
    else if (strcmp(o.mode, "worst") == 0) mode_worst(&o);
    else if (strcmp(o.mode, "sample") == 0) {   /* print the stream: seed phase, then main phase */
        gen g;
        char line[LINE_CAP];
        gen_init(&g, &o, o.keys, o.events, o.attack);
        for (uint64_t i = 0; i < o.keys + o.events; i++)
            if (gen_next(&g, line, sizeof line)) puts(line);
    } else usage();
    return 0;
}
