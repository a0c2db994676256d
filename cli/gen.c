/* gen.c — `vigil gen`, the synthetic card-transaction feed (see gen.h).
 *
 * A source for demos and the quick start. The model is the Fraud Detection
 * Handbook's simulator, made streaming: instead of generating a whole period
 * and labelling it afterwards, it generates one simulated day at a time
 * (drawing that day's compromised terminals and customers first), sorts the
 * day by time, and merges it with a min-heap of pending fraud reports (each
 * due 7 days after its transaction). Memory is O(customers + terminals +
 * one day of transactions + 7 days of frauds), so the stream can be endless.
 *
 * Randomness: one xoshiro256** generator seeded through splitmix64 — fast,
 * good quality and identical on every platform, unlike rand(). Over 800
 * lines because the model, its day merge and the command share one state. */
#include "gen.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRID 100.0          /* the handbook's 100×100 square */
#define RADIUS 5.0          /* a customer uses terminals within this distance */
#define DAY 86400
#define REPORT_DELAY (7 * DAY)
#define TERM_DAYS 28        /* scenario 2: compromised terminal lifetime */
#define CUST_DAYS 14        /* scenario 3: compromised customer lifetime */
#define TERMS_PER_DAY 2
#define CUSTS_PER_DAY 3
#define MAX_ENTITIES 1000000
#define MAX_EMPTY_DAYS 10000000
#define DEFAULT_START 1522540800   /* 2018-04-01T00:00:00Z */

/* ---- random numbers ----------------------------------------------------- */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_u64(rng *r)   /* xoshiro256** (Blackman, Vigna 2018) */
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static double rng_unit(rng *r)   /* [0, 1) */
{
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

static double rng_uniform(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_unit(r); }

static uint32_t rng_below(rng *r, uint32_t n)   /* [0, n), unbiased */
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = rng_u64(r);
    while (x >= limit);
    return (uint32_t)(x % n);
}

static double rng_normal(rng *r, double mean, double sd)   /* Box–Muller */
{
    double u1 = 1.0 - rng_unit(r);   /* (0, 1] */
    double u2 = rng_unit(r);
    return mean + sd * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int rng_poisson(rng *r, double lambda)   /* Knuth; lambda < 4 here */
{
    double l = exp(-lambda), p = 1.0;
    int k = 0;
    do {
        k++;
        p *= rng_unit(r);
    } while (p > l && k < 1000);
    return k - 1;
}

/* ---- time --------------------------------------------------------------- */

/* Days since 1970-01-01 of a civil date, and back (H. Hinnant's algorithms). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* "YYYY-MM-DDTHH:MM:SSZ" into buf (at least 21 bytes). */
static void format_time(int64_t t, char *buf, size_t n)
{
    int64_t days = t >= 0 ? t / DAY : -((-t + DAY - 1) / DAY);
    int64_t sod = t - days * DAY;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, n, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* RFC 3339 date-time ("2018-04-01T00:00:00Z", "…T02:00:00+02:00", fraction
 * ignored) or a bare date ("2018-04-01", midnight UTC). 0 on success. */
static int parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    const char *p = s;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return -1;
    int64_t off = 0;
    if (*p) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &se))
            return -1;
        if (*p == '.') {
            p++;
            if (*p < '0' || *p > '9')
                return -1;
            while (*p >= '0' && *p <= '9')
                p++;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            off = sign * (oh * 3600 + om * 60);
        } else {
            return -1;
        }
        if (*p)
            return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    *out = days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + se - off;
    return 0;
}

/* ---- the model ---------------------------------------------------------- */

typedef struct customer {
    float x, y;
    float mean_amount, std_amount, rate;   /* rate: transactions per day */
    int has_terminal;                      /* some terminal within RADIUS */
} customer;

typedef struct day_tx {
    int32_t t;         /* second of the day */
    int32_t seq;       /* generation order: the tie-breaker, for determinism */
    int32_t customer, terminal;
    int64_t cents;
    int8_t scenario;
} day_tx;

struct vigil_gen {
    vigil_gen_opts o;
    rng r;
    customer *cust;
    float *tx_, *ty_;          /* terminal coordinates */
    int cells;                 /* cells per side of the terminal grid */
    int *cell_start;           /* CSR: terminals of cell c are cell_terms[cell_start[c] .. cell_start[c+1]) */
    int *cell_terms;
    int32_t *term_until;       /* scenario 2: compromised while day < term_until[t] */
    int32_t *cust_until;       /* scenario 3 */
    day_tx *day;               /* the current day, sorted */
    size_t day_len, day_cap, day_pos;
    int64_t day_index;         /* next day to generate */
    uint64_t next_id;          /* next transaction id */
    vigil_gen_event *heap;     /* pending reports, min-heap by (time, transaction_id) */
    size_t heap_len, heap_cap;
    uint64_t produced;
    int failed;
};

static int cell_of(const vigil_gen *g, double v)
{
    int c = (int)(v / RADIUS);
    return c < 0 ? 0 : c >= g->cells ? g->cells - 1 : c;
}

static int within(const vigil_gen *g, const customer *c, int t)
{
    double dx = c->x - g->tx_[t], dy = c->y - g->ty_[t];
    return dx * dx + dy * dy < RADIUS * RADIUS;
}

/* A terminal within RADIUS of c, uniformly (the handbook's
 * random.choice(available_terminals)): rejection sampling over the 3×3 cells
 * around c, which hold every such terminal; an exhaustive pick after 64
 * misses (probability ~1e-12) keeps it bounded. -1 if there is none. */
static int pick_terminal(vigil_gen *g, const customer *c)
{
    int cx = cell_of(g, c->x), cy = cell_of(g, c->y);
    int lo_x = cx > 0 ? cx - 1 : 0, hi_x = cx + 1 < g->cells ? cx + 1 : cx;
    int lo_y = cy > 0 ? cy - 1 : 0, hi_y = cy + 1 < g->cells ? cy + 1 : cy;
    /* Rows of cells are contiguous in cell_terms: one range per row. */
    int start[3], len[3], rows = 0;
    uint32_t total = 0;
    for (int y = lo_y; y <= hi_y; y++) {
        int a = g->cell_start[y * g->cells + lo_x], b = g->cell_start[y * g->cells + hi_x + 1];
        start[rows] = a;
        len[rows] = b - a;
        total += (uint32_t)(b - a);
        rows++;
    }
    if (total == 0)
        return -1;
    for (int attempt = 0; attempt < 64; attempt++) {
        uint32_t k = rng_below(&g->r, total);
        int i = 0;
        while (k >= (uint32_t)len[i]) {
            k -= (uint32_t)len[i];
            i++;
        }
        int t = g->cell_terms[start[i] + (int)k];
        if (within(g, c, t))
            return t;
    }
    uint32_t m = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < len[i]; j++)
            m += (uint32_t)within(g, c, g->cell_terms[start[i] + j]);
    if (m == 0)
        return -1;
    uint32_t k = rng_below(&g->r, m);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < len[i]; j++) {
            int t = g->cell_terms[start[i] + j];
            if (within(g, c, t) && k-- == 0)
                return t;
        }
    return -1;
}

static int cmp_day_tx(const void *a, const void *b)
{
    const day_tx *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Draw `k` distinct indices below n and mark them compromised until `until`. */
static void compromise(vigil_gen *g, int32_t *until_arr, int n, int k, int32_t until)
{
    int picked[4], np = 0;
    if (k > n)
        k = n;
    while (np < k) {
        int v = (int)rng_below(&g->r, (uint32_t)n);
        int dup = 0;
        for (int i = 0; i < np; i++)
            dup |= picked[i] == v;
        if (dup)
            continue;
        picked[np++] = v;
        if (until_arr[v] < until)
            until_arr[v] = until;
    }
}

/* Generate day g->day_index into g->day. 0 on success, -1 out of memory. */
static int generate_day(vigil_gen *g)
{
    int32_t d = (int32_t)g->day_index;
    compromise(g, g->term_until, g->o.terminals, TERMS_PER_DAY, d + TERM_DAYS);
    compromise(g, g->cust_until, g->o.customers, CUSTS_PER_DAY, d + CUST_DAYS);
    g->day_len = 0;
    g->day_pos = 0;
    int32_t seq = 0;
    for (int ci = 0; ci < g->o.customers; ci++) {
        const customer *c = &g->cust[ci];
        int ntx = rng_poisson(&g->r, c->rate);
        for (int k = 0; k < ntx; k++) {
            int t = (int)rng_normal(&g->r, DAY / 2.0, 20000.0);   /* truncation, as int() */
            if (t <= 0 || t >= DAY)
                continue;
            double amount = rng_normal(&g->r, c->mean_amount, c->std_amount);
            if (amount < 0)
                amount = rng_uniform(&g->r, 0, c->mean_amount * 2.0);
            int64_t cents = llround(amount * 100.0);
            if (!c->has_terminal)
                continue;
            int term = pick_terminal(g, c);
            if (term < 0)
                continue;
            int scen = 0;
            if (cents > 22000)
                scen = 1;
            if (g->term_until[term] > d)
                scen = 2;
            if (g->cust_until[ci] > d && rng_unit(&g->r) < 1.0 / 3.0) {
                cents *= 5;
                scen = 3;
            }
            if (g->day_len == g->day_cap) {
                size_t cap = g->day_cap ? g->day_cap * 2 : 4096;
                day_tx *nd = realloc(g->day, cap * sizeof *nd);
                if (!nd)
                    return -1;
                g->day = nd;
                g->day_cap = cap;
            }
            g->day[g->day_len++] = (day_tx){ t, seq++, ci, term, cents, (int8_t)scen };
        }
    }
    qsort(g->day, g->day_len, sizeof *g->day, cmp_day_tx);
    g->day_index++;
    return 0;
}

/* ---- report heap -------------------------------------------------------- */

static int ev_less(const vigil_gen_event *a, const vigil_gen_event *b)
{
    return a->time != b->time ? a->time < b->time : a->transaction_id < b->transaction_id;
}

static int heap_push(vigil_gen *g, const vigil_gen_event *ev)
{
    if (g->heap_len == g->heap_cap) {
        size_t cap = g->heap_cap ? g->heap_cap * 2 : 1024;
        vigil_gen_event *nh = realloc(g->heap, cap * sizeof *nh);
        if (!nh)
            return -1;
        g->heap = nh;
        g->heap_cap = cap;
    }
    size_t i = g->heap_len++;
    g->heap[i] = *ev;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&g->heap[i], &g->heap[p]))
            break;
        vigil_gen_event tmp = g->heap[i];
        g->heap[i] = g->heap[p];
        g->heap[p] = tmp;
        i = p;
    }
    return 0;
}

static void heap_pop(vigil_gen *g, vigil_gen_event *out)
{
    *out = g->heap[0];
    g->heap[0] = g->heap[--g->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < g->heap_len && ev_less(&g->heap[l], &g->heap[m]))
            m = l;
        if (r < g->heap_len && ev_less(&g->heap[r], &g->heap[m]))
            m = r;
        if (m == i)
            break;
        vigil_gen_event tmp = g->heap[i];
        g->heap[i] = g->heap[m];
        g->heap[m] = tmp;
        i = m;
    }
}

/* ---- public ------------------------------------------------------------- */

void vigil_gen_destroy(vigil_gen *g)
{
    if (!g)
        return;
    free(g->cust);
    free(g->tx_);
    free(g->ty_);
    free(g->cell_start);
    free(g->cell_terms);
    free(g->term_until);
    free(g->cust_until);
    free(g->day);
    free(g->heap);
    free(g);
}

vigil_gen *vigil_gen_create(const vigil_gen_opts *opts)
{
    vigil_gen_opts o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (o.customers == 0)
        o.customers = 5000;
    if (o.terminals == 0)
        o.terminals = 10000;
    if (o.start == 0)
        o.start = DEFAULT_START;
    if (o.customers < 0 || o.customers > MAX_ENTITIES || o.terminals < 0 || o.terminals > MAX_ENTITIES)
        return NULL;
    vigil_gen *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->o = o;
    rng_seed(&g->r, o.seed);
    g->next_id = o.first_id;
    size_t nc = (size_t)o.customers, nt = (size_t)o.terminals;
    g->cells = (int)ceil(GRID / RADIUS);
    size_t ncells = (size_t)g->cells * (size_t)g->cells;
    g->cust = calloc(nc, sizeof *g->cust);
    g->tx_ = calloc(nt, sizeof *g->tx_);
    g->ty_ = calloc(nt, sizeof *g->ty_);
    g->cell_start = calloc(ncells + 1, sizeof *g->cell_start);
    g->cell_terms = calloc(nt, sizeof *g->cell_terms);
    g->term_until = calloc(nt, sizeof *g->term_until);
    g->cust_until = calloc(nc, sizeof *g->cust_until);
    int *fill = calloc(ncells, sizeof *fill);
    if (!g->cust || !g->tx_ || !g->ty_ || !g->cell_start || !g->cell_terms || !g->term_until ||
        !g->cust_until || !fill) {
        free(fill);
        vigil_gen_destroy(g);
        return NULL;
    }
    /* Profiles in the handbook's order: customers, then terminals. */
    for (size_t i = 0; i < nc; i++) {
        customer *c = &g->cust[i];
        c->x = (float)rng_uniform(&g->r, 0, GRID);
        c->y = (float)rng_uniform(&g->r, 0, GRID);
        c->mean_amount = (float)rng_uniform(&g->r, 5, 100);
        c->std_amount = c->mean_amount / 2;
        c->rate = (float)rng_uniform(&g->r, 0, 4);
    }
    for (size_t i = 0; i < nt; i++) {
        g->tx_[i] = (float)rng_uniform(&g->r, 0, GRID);
        g->ty_[i] = (float)rng_uniform(&g->r, 0, GRID);
    }
    /* Bucket terminals by cell (row-major), in id order within a cell. */
    for (size_t i = 0; i < nt; i++)
        g->cell_start[cell_of(g, g->ty_[i]) * g->cells + cell_of(g, g->tx_[i]) + 1]++;
    for (size_t c = 0; c < ncells; c++)
        g->cell_start[c + 1] += g->cell_start[c];
    for (size_t i = 0; i < nt; i++) {
        int c = cell_of(g, g->ty_[i]) * g->cells + cell_of(g, g->tx_[i]);
        g->cell_terms[g->cell_start[c] + fill[c]++] = (int)i;
    }
    free(fill);
    int any = 0;
    for (size_t i = 0; i < nc; i++) {
        customer *c = &g->cust[i];
        int cx = cell_of(g, c->x), cy = cell_of(g, c->y);
        for (int y = cy - 1; y <= cy + 1 && !c->has_terminal; y++)
            for (int x = cx - 1; x <= cx + 1 && !c->has_terminal; x++) {
                if (x < 0 || y < 0 || x >= g->cells || y >= g->cells)
                    continue;
                int cell = y * g->cells + x;
                for (int j = g->cell_start[cell]; j < g->cell_start[cell + 1]; j++)
                    if (within(g, c, g->cell_terms[j])) {
                        c->has_terminal = 1;
                        break;
                    }
            }
        any |= c->has_terminal;
    }
    if (!any) {   /* nobody could ever pay: the stream would be empty */
        vigil_gen_destroy(g);
        return NULL;
    }
    return g;
}

int vigil_gen_next_event(vigil_gen *g, vigil_gen_event *ev)
{
    if (!g || !ev || g->failed)
        return -1;
    if (g->o.count && g->produced >= g->o.count)
        return 0;
    int64_t empty_days = 0;
    while (g->day_pos == g->day_len) {
        /* Reports due before the next day begins need no new day. */
        int64_t next_day_start = g->o.start + g->day_index * DAY;
        if (g->heap_len && g->heap[0].time < next_day_start) {
            heap_pop(g, ev);
            g->produced++;
            return 1;
        }
        if (generate_day(g) != 0 || ++empty_days > MAX_EMPTY_DAYS) {
            g->failed = 1;
            return -1;
        }
    }
    const day_tx *t = &g->day[g->day_pos];
    int64_t when = g->o.start + (g->day_index - 1) * DAY + t->t;
    if (g->heap_len && g->heap[0].time < when) {   /* a tx wins a tie */
        heap_pop(g, ev);
        g->produced++;
        return 1;
    }
    *ev = (vigil_gen_event){
        .kind = VIGIL_GEN_TX, .time = when, .transaction_id = g->next_id++,
        .customer_id = t->customer, .terminal_id = t->terminal, .amount_cents = t->cents,
        .fraud = t->scenario != 0, .scenario = t->scenario,
    };
    g->day_pos++;
    if (ev->fraud && !g->o.no_reports) {
        vigil_gen_event rep = *ev;
        rep.kind = VIGIL_GEN_REPORT;
        rep.time = ev->time + REPORT_DELAY;
        if (heap_push(g, &rep) != 0) {
            g->failed = 1;
            return -1;
        }
    }
    g->produced++;
    return 1;
}

int vigil_gen_format(const vigil_gen_event *ev, int labels, char *buf, size_t n)
{
    if (!ev || !buf)
        return -1;
    char ts[32];
    format_time(ev->time, ts, sizeof ts);
    int w;
    if (ev->kind == VIGIL_GEN_REPORT) {
        w = snprintf(buf, n,
                     "{\"type\":\"report\",\"report_id\":\"r%llu\",\"report_datetime\":\"%s\","
                     "\"reported_transaction_id\":\"%llu\",\"customer_id\":%d,\"terminal_id\":%d}\n",
                     (unsigned long long)ev->transaction_id, ts,
                     (unsigned long long)ev->transaction_id, ev->customer_id, ev->terminal_id);
    } else {
        long long c = (long long)ev->amount_cents;
        const char *sign = c < 0 ? "-" : "";
        if (c < 0)
            c = -c;
        char lab[64] = "";
        if (labels)
            snprintf(lab, sizeof lab, ",\"tx_fraud\":%d,\"tx_fraud_scenario\":%d", ev->fraud,
                     ev->scenario);
        w = snprintf(buf, n,
                     "{\"type\":\"tx\",\"transaction_id\":\"%llu\",\"tx_datetime\":\"%s\","
                     "\"customer_id\":%d,\"terminal_id\":%d,\"tx_amount\":%s%lld.%02lld%s}\n",
                     (unsigned long long)ev->transaction_id, ts, ev->customer_id, ev->terminal_id,
                     sign, c / 100, c % 100, lab);
    }
    if (w < 0 || (size_t)w >= n)
        return -1;
    return w;
}

int vigil_gen_next(vigil_gen *g, char *buf, size_t n)
{
    vigil_gen_event ev;
    int r = vigil_gen_next_event(g, &ev);
    if (r <= 0)
        return r;
    return vigil_gen_format(&ev, !g->o.no_labels, buf, n);
}

uint64_t vigil_gen_produced(const vigil_gen *g)
{
    return g ? g->produced : 0;
}

int vigil_gen_parse_start(const char *s, int64_t *seconds)
{
    if (!s || !*s)
        return -1;
    if (strspn(s, "0123456789") == strlen(s)) {   /* milliseconds since the epoch */
        if (strlen(s) > 15)                        /* past year 33000: not a time */
            return -1;
        errno = 0;
        unsigned long long ms = strtoull(s, NULL, 10);
        if (errno)
            return -1;
        *seconds = (int64_t)((ms + 999) / 1000);
        return 0;
    }
    return parse_time(s, seconds);
}

/* ---- the command -------------------------------------------------------- */

static const char usage[] =
    "usage: vigil gen [options]   synthetic card transactions with fraud, NDJSON on stdout\n"
    "  --count N          events to write (transactions and reports); 0 = endless (default)\n"
    "  --seed S           random seed; the same seed gives the same stream (default 0)\n"
    "  --customers N      card holders (default 5000)\n"
    "  --terminals N      merchant terminals (default 10000)\n"
    "  --rate N           at most N events per second of wall clock (default 0: no limit)\n"
    "  --speedup F        event time runs F times faster than the wall clock (default 0: no limit)\n"
    "  --start T          event time of the first day: RFC 3339, or ms since the epoch\n"
    "                     (default 2018-04-01T00:00:00Z); no event is before it\n"
    "  --first-id N       id of the first transaction, then +1 each (default 0)\n"
    "  --no-reports       leave out the fraud reports (sent 7 days after each fraud)\n"
    "  --no-labels        leave out tx_fraud and tx_fraud_scenario\n"
    "Fraud follows the Fraud Detection Handbook's 3 scenarios; tx_fraud labels are for\n"
    "scoring (vigil replay --label-field tx_fraud), never for rules.\n";

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= 0) || isinf(v))
        return -1;
    *out = v;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int vigil_cmd_gen(int argc, char **argv)
{
    vigil_gen_opts o;
    memset(&o, 0, sizeof o);
    double rate = 0, speedup = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char name[32];
        const char *eq = strchr(a, '=');
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            val = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
        }
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(name, "--no-reports") == 0 && !val) {
            o.no_reports = 1;
            continue;
        }
        if (strcmp(name, "--no-labels") == 0 && !val) {
            o.no_labels = 1;
            continue;
        }
        static const char *const with_value[] = { "--count", "--seed", "--customers", "--terminals",
                                                  "--rate", "--speedup", "--start", "--first-id", NULL };
        int known = 0;
        for (int k = 0; with_value[k]; k++)
            known |= strcmp(name, with_value[k]) == 0;
        if (!known) {
            fprintf(stderr, "vigil gen: unknown option '%s'\n%s", a, usage);
            return 2;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vigil gen: %s needs a value\n", name);
                return 2;
            }
            val = argv[++i];
        }
        uint64_t u = 0;
        int bad = 0;
        if (strcmp(name, "--count") == 0) {
            bad = parse_u64(val, UINT64_MAX, &o.count);
        } else if (strcmp(name, "--seed") == 0) {
            bad = parse_u64(val, UINT64_MAX, &o.seed);
        } else if (strcmp(name, "--customers") == 0 || strcmp(name, "--terminals") == 0) {
            bad = parse_u64(val, MAX_ENTITIES, &u) || u == 0;
            if (name[2] == 'c')
                o.customers = (int)u;
            else
                o.terminals = (int)u;
        } else if (strcmp(name, "--rate") == 0) {
            bad = parse_double(val, &rate);
        } else if (strcmp(name, "--speedup") == 0) {
            bad = parse_double(val, &speedup);
        } else if (strcmp(name, "--first-id") == 0) {
            bad = parse_u64(val, UINT64_MAX / 2, &o.first_id);
        } else {   /* --start */
            bad = vigil_gen_parse_start(val, &o.start) || o.start == 0;
        }
        if (bad) {
            fprintf(stderr, "vigil gen: bad value '%s' for %s%s\n", val, name,
                    strcmp(name, "--start") == 0 ? " (expected RFC 3339, e.g. 2018-04-01T00:00:00Z, or ms since the epoch)"
                    : strcmp(name, "--customers") == 0 || strcmp(name, "--terminals") == 0
                        ? " (expected 1..1000000)"
                        : " (expected a non-negative number)");
            return 2;
        }
    }
    vigil_gen *g = vigil_gen_create(&o);
    if (!g) {
        fprintf(stderr, "vigil gen: cannot set up the generator (out of memory, or no customer "
                        "is near any terminal)\n");
        return 1;
    }
    /* A reader that goes away (vigil gen | head) ends the stream quietly. */
    signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    char line[VIGIL_GEN_LINE_MAX];
    double t0 = now_s();
    int64_t first_time = 0;
    uint64_t n = 0;
    for (;;) {
        vigil_gen_event ev;
        int r = vigil_gen_next_event(g, &ev);
        if (r == 0)
            break;
        if (r < 0) {
            fprintf(stderr, "vigil gen: out of memory\n");
            rc = 1;
            break;
        }
        if (n == 0)
            first_time = ev.time;
        if (rate > 0 || speedup > 0) {
            double due = t0;
            if (rate > 0)
                due = t0 + (double)n / rate;
            if (speedup > 0) {
                double d2 = t0 + (double)(ev.time - first_time) / speedup;
                if (d2 > due)
                    due = d2;
            }
            double wait = due - now_s();
            if (wait > 0.0005) {
                if (fflush(stdout) != 0)
                    break;
                sleep_s(wait);
            }
        }
        int len = vigil_gen_format(&ev, !o.no_labels, line, sizeof line);
        if (len < 0 || fwrite(line, 1, (size_t)len, stdout) != (size_t)len)
            break;
        n++;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno != EPIPE) {
            fprintf(stderr, "vigil gen: write error: %s\n", strerror(errno));
            rc = 1;
        }
    }
    vigil_gen_destroy(g);
    return rc;
}
