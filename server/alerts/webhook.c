/* webhook.c — the webhook sink: one libcurl-multi dispatcher thread that
 * POSTs alerts, signed per Standard Webhooks v1, to every configured URL.
 *
 * Why a single thread with a multi handle: alerts arrive from the engine
 * workers at any rate, receivers are slow and sometimes down; the workers must
 * never wait on them (STYLE.md "Threads"). vigil_webhook_send copies the alert
 * into one allocation (envelope body + one job per URL), appends the jobs to
 * an incoming list under a mutex and pokes the dispatcher with
 * curl_multi_wakeup; the dispatcher sleeps in curl_multi_poll (no busy wait),
 * runs up to max_inflight transfers, classifies answers (DESIGN.md §8, see
 * webhook.h for the policy) and frees an alert when its last URL is done.
 *
 * Threading: `incoming` and `stopping` are guarded by `mu`; counters are C11
 * atomics; everything else (ready list, retry lists, slots, targets, the HMAC
 * context) belongs to the dispatcher thread alone.
 *
 * The URL check, the signer and curl's global init are also exported
 * (webhook.h, "helpers shared with the outbox dispatcher") so that dispatch.c
 * signs and validates exactly alike.
 *
 * Crypto and base64 are OpenSSL's (EVP_MAC HMAC-SHA256, EVP_EncodeBlock,
 * EVP_DecodeBlock): no hand-written replacements. */
#include "webhook.h"

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEF_TIMEOUT_MS 5000
#define DEF_QUEUE_CAP 100000
#define DEF_INFLIGHT 64
#define DEF_ATTEMPTS 3
#define DEF_BACKOFF_MS 250
#define DEF_SHUTDOWN_MS 2000
#define MAX_INFLIGHT 4096
#define MAX_ATTEMPTS 20
#define MAX_BACKOFF_MS (60L * 60 * 1000)  /* one retry never waits more than an hour */
#define SECRET_B64_MAX 256                /* base64 characters after "whsec_" */
#define KEY_MAX (SECRET_B64_MAX / 4 * 3 + 3)
#define LOG_EVERY_MS 1000                 /* at most one failure line per URL per second */

/* One delivery: one alert to one URL. Lives inside its alert's allocation. */
struct job {
    struct job *next;
    struct alert *alert;
    int url;                 /* index into targets */
    int attempt;             /* attempts started so far */
    long long due_ms;        /* monotonic time a retry may start */
};

/* One accepted alert: refcount, id, envelope body and its jobs, in ONE
 * malloc'd block freed when the last job finishes. */
struct alert {
    int refs;                /* unfinished jobs; dispatcher-only after enqueue */
    const char *id;          /* points into this block */
    const char *body;        /* points into this block; the full envelope */
    size_t len;
    struct job jobs[];
};

/* One concurrent transfer: a reusable easy handle and what it carries now. */
struct slot {
    CURL *easy;
    struct curl_slist *hdrs;
    struct job *job;         /* NULL when free */
    struct slot *next_free;
    char errbuf[CURL_ERROR_SIZE];
};

/* One configured URL. */
struct target {
    char *url;               /* owned copy */
    char *label;             /* "scheme://host[:port]" for logs: paths may hold tokens */
    int disabled;            /* answered 410 */
    long long log_ms;        /* last failure line */
    unsigned long quiet;     /* failures not logged since */
};

struct list {
    struct job *head, *tail;
};

struct vigil_webhook {
    /* settings, immutable after create */
    long timeout_ms;
    size_t queue_cap;
    int max_inflight, max_attempts;
    long backoff_ms, shutdown_ms;
    struct target *targets;
    int ntargets;
    unsigned char key[KEY_MAX];
    size_t keylen;           /* 0 = unsigned */

    CURLM *multi;
    pthread_t thread;
    int thread_started;

    pthread_mutex_t mu;
    struct list incoming;    /* guarded by mu */
    int stopping;            /* guarded by mu */

    /* dispatcher thread only */
    struct list ready;
    struct list *delayed;    /* [max_attempts]: retries after attempt i; same delay
                                for all, so each list is sorted by due_ms */
    long ndelayed;
    struct slot *slots;
    struct slot *free_slots;
    EVP_MAC *mac;
    EVP_MAC_CTX *mac_ctx;

    atomic_ullong queued, delivered, failed, dropped, retries, inflight, pending;
    atomic_int urls_disabled;
};

/* ---- small helpers ------------------------------------------------------- */

static long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void list_push(struct list *l, struct job *j) {
    j->next = NULL;
    if (l->tail) l->tail->next = j;
    else l->head = j;
    l->tail = j;
}

static void list_push_front(struct list *l, struct job *j) {
    j->next = l->head;
    l->head = j;
    if (!l->tail) l->tail = j;
}

static struct job *list_pop(struct list *l) {
    struct job *j = l->head;
    if (j) {
        l->head = j->next;
        if (!l->head) l->tail = NULL;
        j->next = NULL;
    }
    return j;
}

static void list_splice(struct list *dst, struct list *src) {
    if (!src->head) return;
    if (dst->tail) dst->tail->next = src->head;
    else dst->head = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* "2026-11-21T10:00:00.123Z" into buf (>= 32 bytes). */
static void rfc3339_now(char *buf, size_t n) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Decode "whsec_<base64>" into key (KEY_MAX bytes). Padding may be omitted. */
static vigil_status decode_secret(const char *secret, unsigned char *key, size_t *keylen) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    char buf[SECRET_B64_MAX + 4];
    if (!secret || strncmp(secret, "whsec_", 6) != 0) return VIGIL_EINVAL;
    const char *b = secret + 6;
    size_t n = strnlen(b, SECRET_B64_MAX + 1);
    if (n == 0 || n > SECRET_B64_MAX || strspn(b, alphabet) != n || n % 4 == 1)
        return VIGIL_EINVAL;
    memcpy(buf, b, n);
    while (n % 4) buf[n++] = '=';           /* EVP_DecodeBlock wants whole quads */
    int pads = (buf[n - 1] == '=') + (buf[n - 2] == '=');
    int r = EVP_DecodeBlock(key, (const unsigned char *)buf, (int)n);
    if (r < 0 || r - pads <= 0) return VIGIL_EINVAL;
    *keylen = (size_t)(r - pads);
    return VIGIL_OK;
}

/* "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into out using ctx (a fresh or
 * reused HMAC context; re-keyed here). */
static vigil_status sign_with_key(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen,
                                  const char *id, long long ts, const char *body, size_t len,
                                  char *out, size_t outlen) {
    char tsbuf[32];
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (outlen < VIGIL_WEBHOOK_SIG_MAX) return VIGIL_EINVAL;
    int tn = snprintf(tsbuf, sizeof tsbuf, "%lld", ts);
    if (!EVP_MAC_init(ctx, key, keylen, params) ||
        !EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id)) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)tsbuf, (size_t)tn) ||
        !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
        !EVP_MAC_update(ctx, (const unsigned char *)body, len) ||
        !EVP_MAC_final(ctx, mac, &maclen, sizeof mac) || maclen != 32)
        return VIGIL_ENOMEM;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen); /* 44 chars + NUL */
    OPENSSL_cleanse(mac, sizeof mac);
    return VIGIL_OK;
}

vigil_status vigil_webhook_sign(const char *secret, const char *id, long long ts,
                                const char *body, size_t len, char *out, size_t outlen) {
    unsigned char key[KEY_MAX];
    size_t keylen = 0;
    vigil_status s;
    if (!secret || !id || (!body && len) || !out || outlen < VIGIL_WEBHOOK_SIG_MAX)
        return VIGIL_EINVAL;
    if (!body) body = "";
    s = decode_secret(secret, key, &keylen);
    if (s != VIGIL_OK) return s;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    s = ctx ? sign_with_key(ctx, key, keylen, id, ts, body, len, out, outlen) : VIGIL_ENOMEM;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    OPENSSL_cleanse(key, sizeof key);
    return s;
}

/* ---- job outcomes (dispatcher thread) ------------------------------------ */

static void job_release(vigil_webhook *w, struct job *j) {
    struct alert *a = j->alert;
    if (--a->refs == 0) {
        free(a);
        atomic_fetch_sub(&w->pending, 1);
    }
}

/* Log a final failure, at most one line per URL per LOG_EVERY_MS. */
static void log_failure(vigil_webhook *w, struct job *j, const char *why) {
    struct target *t = &w->targets[j->url];
    long long now = mono_ms();
    if (t->log_ms && now - t->log_ms < LOG_EVERY_MS) {
        t->quiet++;
        return;
    }
    fprintf(stderr, "vigil: webhook %s: alert %s failed after %d attempt%s: %s", t->label,
            j->alert->id, j->attempt, j->attempt == 1 ? "" : "s", why);
    if (t->quiet) fprintf(stderr, " (%lu more failures not shown)", t->quiet);
    fputc('\n', stderr);
    t->log_ms = now;
    t->quiet = 0;
}

static void job_fail(vigil_webhook *w, struct job *j, const char *why) {
    if (why) log_failure(w, j, why);
    atomic_fetch_add(&w->failed, 1);
    job_release(w, j);
}

/* Retry later if attempts are left, else fail. */
static void job_retry_or_fail(vigil_webhook *w, struct job *j, const char *why) {
    if (j->attempt >= w->max_attempts) {
        job_fail(w, j, why);
        return;
    }
    long delay = w->backoff_ms;
    for (int i = 1; i < j->attempt && delay < MAX_BACKOFF_MS; i++) delay *= 2;
    if (delay > MAX_BACKOFF_MS) delay = MAX_BACKOFF_MS;
    j->due_ms = mono_ms() + delay;
    list_push(&w->delayed[j->attempt], j);
    w->ndelayed++;
    atomic_fetch_add(&w->retries, 1);
}

/* Move retries that are due to the front of the ready list. */
static void promote_due(vigil_webhook *w, long long now) {
    for (int i = w->max_attempts - 1; i >= 1; i--) {
        struct list *l = &w->delayed[i];
        while (l->head && l->head->due_ms <= now) {
            list_push_front(&w->ready, list_pop(l));
            w->ndelayed--;
        }
    }
}

/* Earliest retry due time, or -1 when none waits. */
static long long next_due(vigil_webhook *w) {
    long long due = -1;
    for (int i = 1; i < w->max_attempts; i++) {
        struct job *j = w->delayed[i].head;
        if (j && (due < 0 || j->due_ms < due)) due = j->due_ms;
    }
    return due;
}

static size_t discard_body(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

/* Append a copy of line to *h; 0 when out of memory (*h is kept). */
static int add_header(struct curl_slist **h, const char *line) {
    struct curl_slist *n = curl_slist_append(*h, line);
    if (!n) return 0;
    *h = n;
    return 1;
}

/* Start the next attempt of j on a free slot. On failure the job has been
 * retried or failed already. */
static void start_attempt(vigil_webhook *w, struct job *j) {
    struct slot *s = w->free_slots;
    struct target *t = &w->targets[j->url];
    struct alert *a = j->alert;
    char line[VIGIL_WEBHOOK_MAX_ID + 64];
    char sig[VIGIL_WEBHOOK_SIG_MAX];
    struct curl_slist *h = NULL;
    long long ts = (long long)time(NULL);

    j->attempt++;
    /* Headers: every attempt gets its own timestamp and signature (§8). */
    int ok = add_header(&h, "Content-Type: application/json");
    snprintf(line, sizeof line, "webhook-id: %s", a->id);
    ok = ok && add_header(&h, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
    ok = ok && add_header(&h, line);
    if (ok && w->keylen) {
        ok = sign_with_key(w->mac_ctx, w->key, w->keylen, a->id, ts, a->body, a->len, sig,
                           sizeof sig) == VIGIL_OK;
        snprintf(line, sizeof line, "webhook-signature: %s", ok ? sig : "");
        ok = ok && add_header(&h, line);
    }
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    ok = ok && add_header(&h, "Expect:");
    if (!ok) {
        curl_slist_free_all(h);
        job_retry_or_fail(w, j, "out of memory building the request");
        return;
    }

    CURL *e = s->easy;
    curl_easy_reset(e);
    s->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, a->body);   /* borrowed: lives until job_release */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "vigil-webhook/1");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, w->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, w->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        curl_slist_free_all(h);
        job_retry_or_fail(w, j, "curl_multi_add_handle failed");
        return;
    }
    w->free_slots = s->next_free;
    s->next_free = NULL;
    s->hdrs = h;
    s->job = j;
    atomic_fetch_add(&w->inflight, 1);
}

static void disable_target(vigil_webhook *w, int url) {
    struct target *t = &w->targets[url];
    if (t->disabled) return;
    t->disabled = 1;
    atomic_fetch_add(&w->urls_disabled, 1);
    fprintf(stderr, "vigil: webhook %s: answered 410 Gone; URL disabled until restart\n",
            t->label);
}

/* A transfer ended: give the slot back and decide the job's fate. */
static void finish_transfer(vigil_webhook *w, struct slot *s, CURLcode rc) {
    struct job *j = s->job;
    long code = 0;
    char why[CURL_ERROR_SIZE + 64];

    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle(w->multi, s->easy);
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    s->job = NULL;
    s->next_free = w->free_slots;
    w->free_slots = s;
    atomic_fetch_sub(&w->inflight, 1);

    if (rc == CURLE_OK) {
        snprintf(why, sizeof why, "HTTP %ld", code);
        if (code >= 200 && code <= 299) {
            atomic_fetch_add(&w->delivered, 1);
            job_release(w, j);
        } else if (code == 410) {
            disable_target(w, j->url);
            job_fail(w, j, NULL);
        } else if (code == 408 || code == 429 || code >= 500) {
            job_retry_or_fail(w, j, why);
        } else {
            job_fail(w, j, why);
        }
        return;
    }
    snprintf(why, sizeof why, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        job_fail(w, j, why);                  /* retrying cannot help */
        break;
    default:
        job_retry_or_fail(w, j, why);
    }
}

/* Start transfers while slots and work are available. */
static void start_ready(vigil_webhook *w) {
    while (w->free_slots && w->ready.head) {
        /* Ordered mode: a waiting retry holds the line (webhook.h "Order"). */
        if (w->max_inflight == 1 && w->ndelayed) break;
        struct job *j = list_pop(&w->ready);
        if (w->targets[j->url].disabled) job_fail(w, j, NULL);
        else start_attempt(w, j);
    }
}

static int drain_messages(vigil_webhook *w) {
    CURLMsg *m;
    int left, n = 0;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        char *priv = NULL;
        CURLcode rc = m->data.result;             /* read before the handle is removed */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        finish_transfer(w, (struct slot *)priv, rc);
        n++;
    }
    return n;
}

/* Deadline passed: fail everything still queued or running. */
static void abandon_all(vigil_webhook *w) {
    unsigned long long n = 0;
    struct job *j;
    for (int i = 0; i < w->max_inflight; i++) {
        struct slot *s = &w->slots[i];
        if (!s->job) continue;
        curl_multi_remove_handle(w->multi, s->easy);
        curl_slist_free_all(s->hdrs);
        s->hdrs = NULL;
        atomic_fetch_sub(&w->inflight, 1);
        job_fail(w, s->job, NULL);
        s->job = NULL;
        n++;
    }
    pthread_mutex_lock(&w->mu);
    list_splice(&w->ready, &w->incoming);
    pthread_mutex_unlock(&w->mu);
    for (int i = 1; i < w->max_attempts; i++)
        while ((j = list_pop(&w->delayed[i]))) { job_fail(w, j, NULL); n++; }
    w->ndelayed = 0;
    while ((j = list_pop(&w->ready))) { job_fail(w, j, NULL); n++; }
    if (n)
        fprintf(stderr, "vigil: webhook: shutdown deadline passed, %llu deliveries abandoned\n",
                n);
}

static void *dispatcher(void *arg) {
    vigil_webhook *w = arg;
    int stopping = 0;
    long long deadline = 0;

    for (;;) {
        struct list got;
        pthread_mutex_lock(&w->mu);
        got = w->incoming;
        w->incoming.head = w->incoming.tail = NULL;
        if (w->stopping && !stopping) {
            stopping = 1;
            deadline = mono_ms() + w->shutdown_ms;
        }
        pthread_mutex_unlock(&w->mu);
        list_splice(&w->ready, &got);

        promote_due(w, mono_ms());
        start_ready(w);
        int running = 0;
        curl_multi_perform(w->multi, &running);
        int done = drain_messages(w);

        long long now = mono_ms();
        if (stopping) {
            if (!w->ready.head && !w->ndelayed && atomic_load(&w->inflight) == 0) break;
            if (now >= deadline) {
                abandon_all(w);
                break;
            }
        }
        /* Finished transfers freed slots: fill them before sleeping. */
        if (done && w->ready.head && w->free_slots &&
            !(w->max_inflight == 1 && w->ndelayed))
            continue;

        long long timeout = 1000;
        long long due = next_due(w);
        if (due >= 0 && due - now < timeout) timeout = due - now;
        if (stopping && deadline - now < timeout) timeout = deadline - now;
        if (timeout < 0) timeout = 0;
        /* Sleeps until a socket is ready, curl's own timer, a wakeup from
         * send/destroy, or our timeout, whichever comes first. */
        curl_multi_poll(w->multi, NULL, 0, (int)timeout, NULL);
    }
    return NULL;
}

/* ---- create / send / stats / destroy ------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) {
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

vigil_status vigil_webhook_global_init(vigil_error *err) {
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return vigil_error_set(err, VIGIL_EIO, "webhook: curl_global_init: %s",
                               curl_easy_strerror(curl_init_rc));
    return VIGIL_OK;
}

/* Free everything; the thread must not be running. */
static void free_all(vigil_webhook *w) {
    if (w->slots) {
        for (int i = 0; i < w->max_inflight; i++) {
            if (w->slots[i].easy) {
                if (w->multi && w->slots[i].job) curl_multi_remove_handle(w->multi, w->slots[i].easy);
                curl_easy_cleanup(w->slots[i].easy);
            }
            curl_slist_free_all(w->slots[i].hdrs);
        }
        free(w->slots);
    }
    if (w->multi) curl_multi_cleanup(w->multi);
    for (int i = 0; w->targets && i < w->ntargets; i++) {
        free(w->targets[i].url);
        free(w->targets[i].label);
    }
    free(w->targets);
    free(w->delayed);
    EVP_MAC_CTX_free(w->mac_ctx);
    EVP_MAC_free(w->mac);
    OPENSSL_cleanse(w->key, sizeof w->key);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* Check one URL and make its log label. *label is malloc'd, owned by the caller. */
static vigil_status check_url(const char *url, char **label, vigil_error *err) {
    if (!url || (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0))
        return vigil_error_set(err, VIGIL_EINVAL, "webhook URL '%s' is not http:// or https://",
                               url ? url : "(null)");
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    vigil_status s = VIGIL_OK;
    if (!u) return VIGIL_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        s = vigil_error_set(err, VIGIL_EINVAL, "webhook URL '%s' is malformed", url);
    } else {
        curl_url_get(u, CURLUPART_PORT, &port, 0);  /* absent when default */
        size_t n = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + 5;
        *label = malloc(n);
        if (!*label) s = VIGIL_ENOMEM;
        else snprintf(*label, n, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return s;
}

vigil_status vigil_webhook_url_label(const char *url, char **label, vigil_error *err) {
    if (!label) return vigil_error_set(err, VIGIL_EINVAL, "webhook: NULL argument");
    *label = NULL;
    return check_url(url, label, err);
}

/* ---- signer (shared with dispatch.c) -------------------------------------- */

struct vigil_webhook_signer {
    unsigned char key[KEY_MAX];
    size_t keylen;
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx;
};

void vigil_webhook_signer_destroy(vigil_webhook_signer *s) {
    if (!s) return;
    EVP_MAC_CTX_free(s->ctx);
    EVP_MAC_free(s->mac);
    OPENSSL_cleanse(s->key, sizeof s->key);
    free(s);
}

vigil_status vigil_webhook_signer_create(const char *secret, vigil_webhook_signer **out,
                                         vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "webhook: NULL argument");
    *out = NULL;
    vigil_webhook_signer *s = calloc(1, sizeof *s);
    if (!s) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
    if (decode_secret(secret, s->key, &s->keylen) != VIGIL_OK) {
        vigil_webhook_signer_destroy(s);
        return vigil_error_set(err, VIGIL_EINVAL,
                               "webhook secret must be \"whsec_\" followed by base64 "
                               "(at most %d characters)", SECRET_B64_MAX);
    }
    s->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    s->ctx = s->mac ? EVP_MAC_CTX_new(s->mac) : NULL;
    if (!s->ctx) {
        vigil_webhook_signer_destroy(s);
        return vigil_error_set(err, VIGIL_ENOMEM, "webhook: cannot create an HMAC context");
    }
    *out = s;
    return VIGIL_OK;
}

vigil_status vigil_webhook_signer_sign(vigil_webhook_signer *s, const char *id, long long ts,
                                       const char *body, size_t len, char *out, size_t outlen) {
    if (!s || !id || (!body && len) || !out || outlen < VIGIL_WEBHOOK_SIG_MAX) return VIGIL_EINVAL;
    return sign_with_key(s->ctx, s->key, s->keylen, id, ts, body ? body : "", len, out, outlen);
}

vigil_status vigil_webhook_create(const vigil_webhook_opts *opts, vigil_webhook **out,
                                  vigil_error *err) {
    vigil_webhook *w;
    vigil_status s = VIGIL_OK;
    if (!opts || !out) return vigil_error_set(err, VIGIL_EINVAL, "webhook: NULL argument");
    *out = NULL;
    if (opts->nurls < 0 || (opts->nurls > 0 && !opts->urls) || opts->timeout_ms < 0 ||
        opts->max_inflight < 0 || opts->max_inflight > MAX_INFLIGHT || opts->max_attempts < 0 ||
        opts->max_attempts > MAX_ATTEMPTS || opts->retry_backoff_ms < 0 || opts->shutdown_ms < 0)
        return vigil_error_set(err, VIGIL_EINVAL,
                               "webhook: negative or out-of-range option (max_inflight <= %d, "
                               "max_attempts <= %d)", MAX_INFLIGHT, MAX_ATTEMPTS);

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return vigil_error_set(err, VIGIL_EIO, "webhook: curl_global_init: %s",
                               curl_easy_strerror(curl_init_rc));

    w = calloc(1, sizeof *w);
    if (!w) return VIGIL_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    w->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEF_TIMEOUT_MS;
    w->queue_cap = opts->queue_cap ? opts->queue_cap : DEF_QUEUE_CAP;
    w->max_inflight = opts->max_inflight ? opts->max_inflight : DEF_INFLIGHT;
    w->max_attempts = opts->max_attempts ? opts->max_attempts : DEF_ATTEMPTS;
    w->backoff_ms = opts->retry_backoff_ms ? opts->retry_backoff_ms : DEF_BACKOFF_MS;
    w->shutdown_ms = opts->shutdown_ms ? opts->shutdown_ms : DEF_SHUTDOWN_MS;

    if (opts->nurls > 0) {
        w->targets = calloc((size_t)opts->nurls, sizeof *w->targets);
        if (!w->targets) s = VIGIL_ENOMEM;
    }
    for (int i = 0; s == VIGIL_OK && i < opts->nurls; i++) {
        w->ntargets = i + 1;
        s = check_url(opts->urls[i], &w->targets[i].label, err);
        if (s == VIGIL_OK && !(w->targets[i].url = strdup(opts->urls[i]))) s = VIGIL_ENOMEM;
    }
    if (s == VIGIL_OK && opts->secret) {
        s = decode_secret(opts->secret, w->key, &w->keylen);
        if (s != VIGIL_OK)
            vigil_error_set(err, s, "webhook secret must be \"whsec_\" followed by base64 "
                                    "(at most %d characters)", SECRET_B64_MAX);
        if (s == VIGIL_OK) {
            w->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
            w->mac_ctx = w->mac ? EVP_MAC_CTX_new(w->mac) : NULL;
            if (!w->mac_ctx) s = VIGIL_ENOMEM;
        }
    }
    if (s == VIGIL_OK) {
        w->delayed = calloc((size_t)w->max_attempts, sizeof *w->delayed);
        w->slots = calloc((size_t)w->max_inflight, sizeof *w->slots);
        w->multi = curl_multi_init();
        if (!w->delayed || !w->slots) s = VIGIL_ENOMEM;
        else if (!w->multi) s = vigil_error_set(err, VIGIL_EIO, "webhook: curl_multi_init failed");
    }
    for (int i = 0; s == VIGIL_OK && i < w->max_inflight; i++) {
        w->slots[i].easy = curl_easy_init();
        if (!w->slots[i].easy) s = VIGIL_ENOMEM;
        w->slots[i].next_free = w->free_slots;
        w->free_slots = &w->slots[i];
    }
    if (s == VIGIL_OK) {
        /* Keep a warm connection per concurrent transfer. */
        curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)w->max_inflight);
        /* The dispatcher takes no signals: the process's signal thread does. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&w->thread, NULL, dispatcher, w) != 0)
            s = vigil_error_set(err, VIGIL_EIO, "webhook: cannot start the dispatcher thread");
        else
            w->thread_started = 1;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (s != VIGIL_OK) {
        if (s == VIGIL_ENOMEM) vigil_error_set(err, s, "webhook: out of memory");
        free_all(w);
        return s;
    }
    *out = w;
    return VIGIL_OK;
}

vigil_status vigil_webhook_send(vigil_webhook *w, const char *alert_id, const char *alert_json,
                                size_t len) {
    char ts[40], prefix[96];
    if (!w || !alert_id || !alert_json || len == 0) return VIGIL_EINVAL;
    size_t idlen = strnlen(alert_id, VIGIL_WEBHOOK_MAX_ID + 1);
    if (idlen == 0 || idlen > VIGIL_WEBHOOK_MAX_ID) return VIGIL_EINVAL;
    for (size_t i = 0; i < idlen; i++)   /* it goes into a header and the signed string */
        if ((unsigned char)alert_id[i] <= 0x20 || (unsigned char)alert_id[i] >= 0x7f)
            return VIGIL_EINVAL;
    if (len > VIGIL_WEBHOOK_MAX_ALERT) return VIGIL_ETOOBIG;
    if (w->ntargets == 0) return VIGIL_OK;

    unsigned long long n = (unsigned long long)w->ntargets;
    unsigned long long p = atomic_load(&w->pending);
    do {                                  /* reserve a place; never above queue_cap */
        if (p >= w->queue_cap) {
            atomic_fetch_add(&w->dropped, n);
            return VIGIL_EFULL;
        }
    } while (!atomic_compare_exchange_weak(&w->pending, &p, p + 1));

    rfc3339_now(ts, sizeof ts);
    int plen = snprintf(prefix, sizeof prefix,
                        "{\"type\":\"alert.created\",\"timestamp\":\"%s\",\"data\":", ts);
    size_t jobs = (size_t)w->ntargets * sizeof(struct job);
    size_t blen = (size_t)plen + len + 1;
    struct alert *a = malloc(sizeof *a + jobs + idlen + 1 + blen + 1);
    if (!a) {
        atomic_fetch_sub(&w->pending, 1);
        return VIGIL_ENOMEM;
    }
    char *id = (char *)a + sizeof *a + jobs;
    char *body = id + idlen + 1;
    memcpy(id, alert_id, idlen);
    id[idlen] = '\0';
    memcpy(body, prefix, (size_t)plen);
    memcpy(body + plen, alert_json, len);
    body[plen + len] = '}';
    body[blen] = '\0';
    a->refs = w->ntargets;
    a->id = id;
    a->body = body;
    a->len = blen;

    struct list chain = {NULL, NULL};
    for (int i = 0; i < w->ntargets; i++) {
        struct job *j = &a->jobs[i];
        j->alert = a;
        j->url = i;
        j->attempt = 0;
        j->due_ms = 0;
        list_push(&chain, j);
    }
    atomic_fetch_add(&w->queued, n);
    pthread_mutex_lock(&w->mu);
    /* Wake only on empty -> non-empty: the dispatcher takes the whole list
     * at once, and a non-empty list means a wakeup is already pending. */
    int was_empty = w->incoming.head == NULL;
    list_splice(&w->incoming, &chain);
    pthread_mutex_unlock(&w->mu);
    if (was_empty) curl_multi_wakeup(w->multi);
    return VIGIL_OK;
}

void vigil_webhook_stats(vigil_webhook *w, vigil_webhook_counters *st) {
    if (!st) return;
    memset(st, 0, sizeof *st);
    if (!w) return;
    st->queued = atomic_load(&w->queued);
    st->delivered = atomic_load(&w->delivered);
    st->failed = atomic_load(&w->failed);
    st->dropped = atomic_load(&w->dropped);
    st->retries = atomic_load(&w->retries);
    st->inflight = atomic_load(&w->inflight);
    st->pending = atomic_load(&w->pending);
    st->urls_disabled = atomic_load(&w->urls_disabled);
}

void vigil_webhook_destroy(vigil_webhook *w) {
    if (!w) return;
    if (w->thread_started) {
        pthread_mutex_lock(&w->mu);
        w->stopping = 1;
        pthread_mutex_unlock(&w->mu);
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
    }
    free_all(w);
}
