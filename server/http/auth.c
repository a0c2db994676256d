/* auth.c — bearer tokens and roles at the edge (auth.h). A token is kept
 * only as its SHA-256 and compared with CRYPTO_memcmp over the digests, so
 * neither its text nor its length leaks through timing, and it never
 * appears in a log line or an error. Roles nest admin ⊃ analyst ⊃ viewer;
 * ingest is apart (admin has it too). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "auth.h"

typedef struct entry {
    char name[64];
    unsigned char digest[32];
    vigil_role role;
    int rate;                    /* events/s; 0: no limit */
    double tokens;               /* the bucket (events), at most rate */
    int64_t last_ms;             /* its last refill, monotonic */
    unsigned long long limited;  /* requests refused (429, 413) */
} entry;

struct vigil_auth {
    pthread_mutex_t mu;          /* the buckets */
    entry *t;
    int n;
    int has_metrics;
    unsigned char metrics[32];
};

/* SHA-256 with the digest fetched once: EVP_sha256() makes OpenSSL 3 look
 * the algorithm up in its providers on every call, which was most of what
 * a token cost per request (bench/auth_overhead.sh: 0.77 µs, 0.31 µs
 * fetched). The fetched digest lives as long as the process. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void) { sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL); }

static void sha(const char *s, unsigned char out[32]) {
    pthread_once(&sha256_once, sha256_fetch);
    unsigned int l = 0;
    EVP_Digest(s, strlen(s), out, &l, sha256_md ? sha256_md : EVP_sha256(), NULL);
}

static int role_of(const char *s, vigil_role *r) {
    static const struct { const char *n; vigil_role r; } roles[] = {
        {"ingest", VIGIL_ROLE_INGEST}, {"viewer", VIGIL_ROLE_VIEWER}, {"analyst", VIGIL_ROLE_ANALYST},
        {"admin", VIGIL_ROLE_ADMIN}};
    for (size_t i = 0; s && i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(roles[i].n, s) == 0) {
            *r = roles[i].r;
            return 0;
        }
    return -1;
}

vigil_status vigil_auth_create(const vigil_auth_token *t, int n, const char *metrics_token, vigil_auth **out,
                               vigil_error *err) {
    vigil_auth *a = calloc(1, sizeof *a);
    if (!a || (n && !(a->t = calloc((size_t)n, sizeof *a->t)))) {
        free(a);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (!t[i].token || role_of(t[i].role, &a->t[i].role) != 0) {
            vigil_auth_destroy(a);
            return vigil_error_set(err, VIGIL_EINVAL, "tokens[%d]: role must be ingest, viewer, analyst or admin",
                                   i + 1);
        }
        sha(t[i].token, a->t[i].digest);
        a->t[i].rate = t[i].rate > 0 ? t[i].rate : 0;
        a->t[i].tokens = a->t[i].rate;   /* a full bucket: one second's worth */
        if (t[i].name && t[i].name[0]) snprintf(a->t[i].name, sizeof a->t[i].name, "%s", t[i].name);
        else snprintf(a->t[i].name, sizeof a->t[i].name, "token%d", i + 1);
    }
    a->n = n;
    pthread_mutex_init(&a->mu, NULL);
    if (metrics_token && metrics_token[0]) {
        a->has_metrics = 1;
        sha(metrics_token, a->metrics);
    }
    *out = a;
    return VIGIL_OK;
}

void vigil_auth_destroy(vigil_auth *a) {
    if (!a) return;
    if (a->t) OPENSSL_cleanse(a->t, (size_t)a->n * sizeof *a->t);
    free(a->t);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

int vigil_auth_enabled(const vigil_auth *a) { return a && a->n > 0; }

static int starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

vigil_role vigil_auth_role_for(const char *method, const char *url) {
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/healthz") == 0 || strcmp(url, "/readyz") == 0) return VIGIL_ROLE_PUBLIC;
    if (strcmp(url, "/metrics") == 0) return VIGIL_ROLE_METRICS;
    if (strcmp(url, "/v1/events") == 0) return VIGIL_ROLE_INGEST;
    if (starts(url, "/v1/audit") || starts(url, "/v1/deadletters")) return VIGIL_ROLE_ADMIN;
    if (starts(url, "/v1/keys/") || starts(url, "/v1/lists")) return VIGIL_ROLE_ANALYST;
    if (starts(url, "/v1/rules")) {
        const char *cmp = strstr(url, "/compare");
        if (get && !(cmp && cmp[8] == '\0')) return VIGIL_ROLE_VIEWER;
        return VIGIL_ROLE_ANALYST;   /* changes, rules:test, compare */
    }
    if (starts(url, "/v1/alerts")) return get ? VIGIL_ROLE_VIEWER : VIGIL_ROLE_ANALYST;   /* dispositions */
    if (starts(url, "/v1/")) return get ? VIGIL_ROLE_VIEWER : VIGIL_ROLE_ADMIN;   /* stats; anything new: strict */
    return get ? VIGIL_ROLE_PUBLIC : VIGIL_ROLE_ADMIN;   /* the dashboard's assets */
}

static int allows(vigil_role have, vigil_role need) {
    if (have == VIGIL_ROLE_ADMIN) return 1;
    if (need == VIGIL_ROLE_INGEST) return have == VIGIL_ROLE_INGEST;
    if (have == VIGIL_ROLE_INGEST) return 0;
    return have >= need;   /* analyst ⊃ viewer */
}

int vigil_auth_check(const vigil_auth *a, vigil_role need, const char *token, const char **who, int *index) {
    *who = "local";
    *index = -1;
    if (need == VIGIL_ROLE_PUBLIC) return 0;
    if (need == VIGIL_ROLE_METRICS) {
        if (!a || !a->has_metrics) return 0;
        unsigned char d[32];
        if (!token) return 401;
        sha(token, d);
        return CRYPTO_memcmp(d, a->metrics, 32) == 0 ? 0 : 401;
    }
    if (!vigil_auth_enabled(a)) return 0;
    if (!token || !token[0]) return 401;
    unsigned char d[32];
    sha(token, d);
    int found = -1;
    for (int i = 0; i < a->n; i++)   /* every entry compared: the time does not tell which matched */
        if (CRYPTO_memcmp(d, a->t[i].digest, 32) == 0) found = i;
    OPENSSL_cleanse(d, sizeof d);
    if (found < 0) return 401;
    if (!allows(a->t[found].role, need)) return 403;
    *who = a->t[found].name;
    *index = found;
    return 0;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vigil_auth_take(vigil_auth *a, int i, long n, int *retry_s) {
    if (!a || i < 0 || i >= a->n || !a->t[i].rate) return 0;
    entry *e = &a->t[i];
    int st = 0;
    pthread_mutex_lock(&a->mu);
    int64_t now = mono_ms();
    if (e->last_ms) e->tokens += (double)(now - e->last_ms) * e->rate / 1000.0;
    if (e->tokens > e->rate) e->tokens = e->rate;
    e->last_ms = now;
    if (n > e->rate) {
        st = 413;
    } else if (e->tokens >= (double)n) {
        e->tokens -= (double)n;
    } else {
        double wait = ((double)n - e->tokens) / e->rate;
        *retry_s = (int)wait + 1;
        st = 429;
    }
    if (st) e->limited++;
    pthread_mutex_unlock(&a->mu);
    return st;
}

void vigil_auth_foreach_limited(vigil_auth *a, void (*fn)(void *ud, const char *name, unsigned long long n), void *ud) {
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    for (int i = 0; i < a->n; i++)
        if (a->t[i].rate) fn(ud, a->t[i].name, a->t[i].limited);
    pthread_mutex_unlock(&a->mu);
}
