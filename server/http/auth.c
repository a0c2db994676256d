/* auth.c — bearer tokens and roles at the edge (auth.h). A token is kept
 * only as its SHA-256 and compared with CRYPTO_memcmp over the digests, so
 * neither its text nor its length leaks through timing, and it never
 * appears in a log line or an error. Roles nest admin ⊃ analyst ⊃ viewer;
 * ingest is apart (admin has it too). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
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
        if (t[i].name && t[i].name[0]) snprintf(a->t[i].name, sizeof a->t[i].name, "%s", t[i].name);
        else snprintf(a->t[i].name, sizeof a->t[i].name, "token%d", i + 1);
        if (!t[i].token || role_of(t[i].role, &a->t[i].role) != 0) {
            vigil_auth_destroy(a);
            return vigil_error_set(err, VIGIL_EINVAL, "token '%s': role must be ingest, viewer, analyst or admin",
                                   t[i].name ? t[i].name : "?");
        }
        sha(t[i].token, a->t[i].digest);
        for (int j = 0; j < i; j++)
            if (CRYPTO_memcmp(a->t[j].digest, a->t[i].digest, 32) == 0) {
                vigil_status s = vigil_error_set(err, VIGIL_EINVAL,
                                                 "tokens '%s' and '%s' are the same token; give every client its own",
                                                 a->t[j].name, t[i].name ? t[i].name : "?");
                vigil_auth_destroy(a);
                return s;
            }
        a->t[i].rate = t[i].rate > 0 ? t[i].rate : 0;
        a->t[i].tokens = a->t[i].rate;   /* a full bucket: one second's worth */
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
    if (get && strcmp(url, "/v1/openapi.yaml") == 0) return VIGIL_ROLE_PUBLIC;   /* documents the API, holds no data */
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

void vigil_auth_memo_clear(vigil_auth_memo *m) {
    if (m) OPENSSL_cleanse(m, sizeof *m);
}

int vigil_auth_check(const vigil_auth *a, vigil_role need, const char *token, const char **who, int *index) {
    return vigil_auth_check_memo(a, need, token, NULL, who, index);
}

int vigil_auth_check_memo(const vigil_auth *a, vigil_role need, const char *token, vigil_auth_memo *memo,
                          const char **who, int *index) {
    *who = "local";
    *index = -1;
    if (need == VIGIL_ROLE_PUBLIC) return 0;
    int metrics_ok = 0, metrics_req = need == VIGIL_ROLE_METRICS;
    if (metrics_req) {   /* the metrics token, or an admin's */
        if (!a || !a->has_metrics) return 0;
        need = VIGIL_ROLE_ADMIN;
    } else if (!vigil_auth_enabled(a)) {
        return 0;
    }
    if (!token || !token[0]) return 401;
    size_t tl = strlen(token);
    int found = -1;
    if (memo && !metrics_req && memo->len && memo->len == tl && CRYPTO_memcmp(memo->tok, token, tl) == 0) {
        found = memo->found;   /* this connection's client sent it before: known */
    } else {
        unsigned char d[32];
        sha(token, d);
        for (int i = 0; i < a->n; i++)   /* every entry compared: the time does not tell which matched */
            if (CRYPTO_memcmp(d, a->t[i].digest, 32) == 0) found = i;
        if (a->has_metrics && CRYPTO_memcmp(d, a->metrics, 32) == 0) metrics_ok = 1;
        OPENSSL_cleanse(d, sizeof d);
        if (memo && found >= 0 && tl < sizeof memo->tok) {
            memcpy(memo->tok, token, tl + 1);
            memo->len = tl;
            memo->found = found;
        }
    }
    if (metrics_ok && metrics_req) {   /* the metrics token opens /metrics and nothing else */
        *who = "metrics";
        return 0;
    }
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

/* ---- the tokens file ---------------------------------------------------------------- */

#define TOKENS_FILE_MAX (1u << 20)

static int name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 63) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.' && *s != '@') return 0;
    return 1;
}

static char *next_word(char **p) {
    char *s = *p;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) return NULL;
    char *w = s;
    while (*s && *s != ' ' && *s != '\t') s++;
    if (*s) *s++ = '\0';
    *p = s;
    return w;
}

void vigil_auth_tokens_free(vigil_auth_token *t, char *store) {
    if (store) OPENSSL_cleanse(store, TOKENS_FILE_MAX + 1);   /* the whole buffer: words end in NULs */
    free(store);
    free(t);
}

vigil_status vigil_auth_read_file(const char *path, vigil_auth_token **out, int *n, char **store,
                                  vigil_error *err) {
    *out = NULL;
    *n = 0;
    *store = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vigil_error_set(err, errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO, "tokens_file '%s': %s", path,
                               strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return vigil_error_set(err, VIGIL_EIO, "tokens_file '%s': not a regular file", path);
    }
    if (sb.st_mode & S_IRWXO) {
        fclose(f);
        return vigil_error_set(err, VIGIL_EIO,
                               "tokens_file '%s': other users may read it (mode %03o); it holds secrets: chmod 600 it",
                               path, (unsigned)(sb.st_mode & 0777));
    }
    char *buf = malloc(TOKENS_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    }
    size_t len = fread(buf, 1, TOKENS_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    vigil_status st = VIGIL_OK;
    vigil_auth_token *t = NULL;
    int cnt = 0;
    if (bad) {
        st = vigil_error_set(err, VIGIL_EIO, "tokens_file '%s': cannot read it", path);
        goto done;
    }
    if (len > TOKENS_FILE_MAX) {
        st = vigil_error_set(err, VIGIL_ETOOBIG, "tokens_file '%s': larger than 1 MiB", path);
        goto done;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        st = vigil_error_set(err, VIGIL_EPARSE, "tokens_file '%s': holds a NUL byte; it must be text", path);
        goto done;
    }
    int line = 0;
    for (char *p = buf; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        line++;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = '\0';
        char *q = p, *name = next_word(&q);
        p = nl ? nl + 1 : NULL;
        if (!name || name[0] == '#') continue;
        char *role = next_word(&q), *tok = next_word(&q), *rate = next_word(&q), *extra = next_word(&q);
        const char *why = NULL;
        vigil_role r;
        long rv = 0;
        if (!role || !tok) why = "expected `name role token [rate]`";
        else if (!name_ok(name)) why = "the name must be 1 to 63 letters, digits, '-', '_', '.' or '@'";
        else if (role_of(role, &r) != 0) why = "the role must be ingest, viewer, analyst or admin";
        else if (strlen(tok) > 256) why = "the token is longer than 256 characters";
        else if (extra) why = "too many words: expected `name role token [rate]`";
        else if (rate) {
            char *end;
            errno = 0;
            rv = strtol(rate, &end, 10);
            if (*end || errno || rv < 1 || rv > 100000000) why = "the rate must be a whole number of events/s from 1 to 100000000";
        }
        for (const char *c = tok; !why && c && *c; c++)
            if (!isgraph((unsigned char)*c)) why = "the token holds a control character";
        if (why) {
            st = vigil_error_set(err, VIGIL_EPARSE, "tokens_file '%s' line %d: %s", path, line, why);
            if (err) err->line = line;
            goto done;
        }
        if (cnt == VIGIL_AUTH_MAX_TOKENS) {
            st = vigil_error_set(err, VIGIL_ETOOBIG, "tokens_file '%s': more than %d tokens", path,
                                 VIGIL_AUTH_MAX_TOKENS);
            goto done;
        }
        if (!t && !(t = calloc(VIGIL_AUTH_MAX_TOKENS, sizeof *t))) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
            goto done;
        }
        t[cnt++] = (vigil_auth_token){.name = name, .role = role, .token = tok, .rate = (int)rv};
    }
done:
    if (st != VIGIL_OK) {
        vigil_auth_tokens_free(t, NULL);
        OPENSSL_cleanse(buf, TOKENS_FILE_MAX + 1);
        free(buf);
        return st;
    }
    *out = t;
    *n = cnt;
    *store = buf;
    return VIGIL_OK;
}
