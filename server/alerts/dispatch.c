/* dispatch.c — the outbox dispatcher: one thread per webhook endpoint that
 * reads the outbox, POSTs alerts with libcurl multi and acks what finished.
 *
 * Why this shape (see dispatch.h for the policy): delivery must survive
 * crashes (the outbox holds an alert until its ack), keep each key's alerts
 * in order, and never let one endpoint slow another. So every endpoint has
 * its own thread, multi handle, slots and window of read alerts; the only
 * shared things are the outbox (thread-safe by contract), the counters
 * (C11 atomics) and the stop flag.
 *
 * An endpoint thread loops: read a batch after its last position (blocking
 * up to 200 ms when it has nothing else to do, so an idle endpoint sleeps in
 * the outbox, not in a busy loop), filter, then walk the window in outbox
 * order starting attempts for alerts whose key has no earlier alert in
 * flight or waiting for a retry, run curl, classify finished transfers, and
 * ack in one batch what was delivered.
 *
 * This file is the moving part: the threads, the libcurl multi loop, the
 * requests and the scheduling by key. What becomes of each alert (the
 * window and its states, filtering, retry and backoff, dead letters, 410,
 * acks) is decided in dispatch_policy.c, on the same thread
 * (dispatch_int.h). The metrics text (dispatch_metrics.c) and the stop's
 * drain (webhooks.c) live outside, on the public stats.
 *
 * Signing and URL checks are sign.c's (vigil_webhook_signer, OpenSSL).
 *
 * This is the alerts wing's only libcurl sender: the in-memory case (no
 * Redis, no data dir) reads the memory outbox (outbox_mem.c) through the
 * same code, so every transfer option and every status decision is made
 * once. */
#define _GNU_SOURCE
#include "dispatch_int.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vigil/clock.h"
#include "vigil/event.h"
#include "server/common/fault.h"
#include "sign.h"
#include "server/common/log.h"

#define MAX_ENDPOINTS 64
#define MAX_CONCURRENCY 1024
#define DEF_CONCURRENCY 16
#define DEF_TIMEOUT_MS 5000
#define DEF_BACKOFF_MS 1000
#define DEF_MAX_BACKOFF_MS 3600000L
#define DEF_HORIZON_MS 86400000L
#define DEF_SHUTDOWN_MS 2000
#define READ_WAIT_MS 200          /* longest blocking read: bounds destroy's latency */

const double vigil_dispatch_buckets[VIGIL_DISPATCH_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                               5, 10, 30, 60, 300, 1800, 3600, 21600, 86400};

/* ---- small helpers ------------------------------------------------------- */

void vigil_dispatch_endpoint_name(const vigil_endpoint_config *c, int index, char *buf, size_t n) {
    if (!buf || n == 0) return;
    if (c && c->name && *c->name) snprintf(buf, n, "%s", c->name);
    else snprintf(buf, n, "webhook%d", index + 1);
}

static int valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* ---- HTTP ---------------------------------------------------------------- */

static size_t discard_body(char *p, size_t size, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return size * n;
}

static int add_header(struct curl_slist **h, const char *line) {
    struct curl_slist *n = curl_slist_append(*h, line);
    if (!n) return 0;
    *h = n;
    return 1;
}

static void start(endpoint *ep, item *it, long long now) {
    slot *s = ep->free_slots;
    char line[128 + VIGIL_ALERT_REF_MAX];
    char sig[VIGIL_WEBHOOK_SIG_MAX];
    struct curl_slist *h = NULL;
    long long ts = (long long)time(NULL);

    if (it->attempts == 0) it->first_ms = now;
    it->attempts++;
    atomic_fetch_add(&ep->attempts, 1);
    int ok = add_header(&h, "Content-Type: application/json");
    snprintf(line, sizeof line, "webhook-id: %s", it->e.id);
    ok = ok && add_header(&h, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
    ok = ok && add_header(&h, line);
    if (ok && ep->signer) {
        ok = vigil_webhook_signer_sign(ep->signer, it->e.id, ts, it->body, it->blen, sig, sizeof sig) ==
             VIGIL_OK;
        snprintf(line, sizeof line, "webhook-signature: %s", ok ? sig : "");
        ok = ok && add_header(&h, line);
    }
    ok = ok && add_header(&h, "Expect:");
    if (!ok) {
        curl_slist_free_all(h);
        snprintf(it->why, sizeof it->why, "out of memory building the request");
        vdisp_retry_or_dead(ep, it, 0);
        return;
    }
    CURL *e = s->easy;
    curl_easy_reset(e);
    s->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, ep->url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->blen);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, it->body);   /* borrowed: the item outlives the transfer */
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "vigil-webhook/1");
    /* No CURLOPT_TIMEOUT_MS: the attempt's deadline is checked by the
     * endpoint thread (expire) after it collected the finished transfers.
     * libcurl's own clock would also run while the thread is blocked in an
     * outbox call (a stalled Redis holds it up to its I/O timeout), and then
     * fail a request whose 2xx had arrived meanwhile: a needless resend. */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* Redirects are never followed (dispatch.h): a 3xx would send a signed
     * alert to a URL nobody configured (another host, an internal address),
     * and libcurl turns the POST into a GET on 301/302/303. Said explicitly
     * so that no default or later change decides it. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (curl_multi_add_handle(ep->multi, e) != CURLM_OK) {
        curl_slist_free_all(h);
        snprintf(it->why, sizeof it->why, "curl_multi_add_handle failed");
        vdisp_retry_or_dead(ep, it, 0);
        return;
    }
    ep->free_slots = s->next_free;
    s->next_free = NULL;
    s->hdrs = h;
    s->it = it;
    s->deadline_ms = now + ep->timeout_ms;
    vdisp_set_state(ep, it, Q_FLIGHT);
    atomic_fetch_add(&ep->inflight, 1);
}

/* A transfer ended: free its slot, then let the policy classify the answer. */
static void finish(endpoint *ep, slot *s, CURLcode rc) {
    item *it = s->it;
    long code = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
#if LIBCURL_VERSION_NUM >= 0x074200
    curl_easy_getinfo(s->easy, CURLINFO_RETRY_AFTER, &retry_after);
#endif
    curl_multi_remove_handle(ep->multi, s->easy);
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    s->it = NULL;
    s->next_free = ep->free_slots;
    ep->free_slots = s;
    atomic_fetch_sub(&ep->inflight, 1);
    vdisp_set_state(ep, it, Q_READY);   /* neutral until classified */
    vdisp_answered(ep, it, rc, code, (long)retry_after, s->errbuf);
}

static void drain(endpoint *ep) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(ep->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        char *priv = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        finish(ep, (slot *)priv, rc);
    }
}

/* Attempts past their deadline (timeout_ms since they started) end as a
 * transport timeout. Called after drain(), so that an answer that arrived
 * while the thread was busy elsewhere counts. Returns the earliest deadline
 * of the attempts still in flight, or -1. */
static long long expire(endpoint *ep, long long now) {
    long long next = -1;
    for (int i = 0; i < ep->concurrency; i++) {
        slot *s = &ep->slots[i];
        if (!s->it) continue;
        if (now < s->deadline_ms) {
            if (next < 0 || s->deadline_ms < next) next = s->deadline_ms;
            continue;
        }
        snprintf(s->errbuf, sizeof s->errbuf, "timed out after %ld ms", ep->timeout_ms);
        finish(ep, s, CURLE_OPERATION_TIMEDOUT);
    }
    return next;
}

/* ---- scheduling ---------------------------------------------------------- */

static size_t key_hash(const char *k) {
    size_t h = 1469598103934665603ull;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return h;
}

/* Mark key busy; returns 1 if it already was. */
static int key_busy(endpoint *ep, const char *k) {
    size_t m = KEYSET - 1;
    for (size_t i = key_hash(k) & m;; i = (i + 1) & m) {
        if (ep->keys[i].gen != ep->gen) {
            ep->keys[i].gen = ep->gen;
            ep->keys[i].k = k;
            return 0;
        }
        if (!strcmp(ep->keys[i].k, k)) return 1;
    }
}

/* Start what may start: in outbox order, an alert whose key has no earlier
 * alert in flight or waiting. */
static void schedule(endpoint *ep, long long now) {
    if (!ep->nready && !ep->nwait) return;
    if (++ep->gen == 0) {   /* wrapped: clear the stamps */
        for (size_t i = 0; i < KEYSET; i++) ep->keys[i].gen = 0;
        ep->gen = 1;
    }
    item *it = ep->head;
    while (it) {
        item *next = it->next;
        switch (it->state) {
        case Q_FLIGHT:
            key_busy(ep, it->e.key);
            break;
        case Q_WAIT:
        case Q_READY: {
            int due = it->state == Q_READY || it->due_ms <= now;
            /* issue 14 (pair outbox): an alert of a pair another instance owns
             * now is its to send. Checked before key_busy, which keeps a
             * pointer to the key for this pass. */
            vigil_outbox *ob = ep->d->ob;
            if (due && ep->free_slots && ob->holds && !ob->holds(ob, it->e.ref)) {
                vdisp_window_drop(ep, it);
                break;
            }
            int busy = key_busy(ep, it->e.key);
            if (!busy && due && ep->free_slots) start(ep, it, now);
            break;
        }
        default:   /* Q_DEAD: finished here, holds nothing back */
            break;
        }
        it = next;
    }
}

static long long next_due(const endpoint *ep) {
    long long due = -1;
    if (!ep->nwait) return -1;
    for (const item *it = ep->head; it; it = it->next)
        if (it->state == Q_WAIT && (due < 0 || it->due_ms < due)) due = it->due_ms;
    return due;
}

/* ---- the endpoint thread ------------------------------------------------- */

static void *run(void *arg) {
    endpoint *ep = arg;
    vigil_dispatch *d = ep->d;
    vigil_alert_record *buf = calloc(READ_BATCH, sizeof *buf);
    int stop_seen = 0;
    if (!buf) {
        vigil_log(VIGIL_LOG_ERROR, "alerts", "webhook %s: out of memory; endpoint not served", ep->name);
        return NULL;
    }
    for (;;) {
        long long now = mono_ms();
        int stopping = atomic_load(&d->stopping);
        if (stopping && !stop_seen) {
            /* Not started yet: left unacked, read again by the next run. */
            stop_seen = 1;
            for (item *it = ep->head, *next; it; it = next) {
                next = it->next;
                if (it->state == Q_READY || it->state == Q_WAIT) vdisp_window_drop(ep, it);
            }
        }
        if (stopping) {
            if (ep->ninflight == 0 || now >= atomic_load(&d->deadline_ms)) break;
        } else if (ep->nitems < WINDOW && ep->nacks < MAX_PENDING_ACKS && now >= ep->next_read_ms) {
            int wait = 0;
            if (!ep->ninflight && !ep->nready && !ep->ndead && !ep->nacks) {
                long long due = next_due(ep);
                wait = READ_WAIT_MS;
                if (due >= 0 && due - now < wait) wait = due - now > 0 ? (int)(due - now) : 0;
            }
            vdisp_do_read(ep, buf, wait);
            now = mono_ms();
        }
        vdisp_flush_dead(ep, now, 0);
        if (!stopping) schedule(ep, now);
        int running = 0;
        curl_multi_perform(ep->multi, &running);
        drain(ep);
        now = mono_ms();
        long long dl = ep->ninflight ? expire(ep, now) : -1;   /* the next attempt deadline */
        vdisp_flush_acks(ep, now, 0);
        vdisp_flush_dead(ep, now, 0);

        /* Nothing to run and reading may block: the next read is the sleep. */
        int can_read = !stopping && ep->nitems < WINDOW && ep->nacks < MAX_PENDING_ACKS;
        if (can_read && now >= ep->next_read_ms && !ep->ninflight && !ep->nready && !ep->ndead && !ep->nacks)
            continue;
        long long t = 1000;
        if (can_read) t = ep->next_read_ms - now < t ? ep->next_read_ms - now : t;
        long long due = stopping ? -1 : next_due(ep);
        if (due >= 0 && due - now < t) t = due - now;
        if (dl >= 0 && dl - now < t) t = dl - now;
        if (ep->nacks && ep->ack_retry_ms - now < t) t = ep->ack_retry_ms - now;
        if (ep->ndead && ep->dead_retry_ms - now < t) t = ep->dead_retry_ms - now;
        if (stopping && atomic_load(&d->deadline_ms) - now < t) t = atomic_load(&d->deadline_ms) - now;
        if (t < 0) t = 0;
        curl_multi_poll(ep->multi, NULL, 0, (int)t, NULL);
    }
    /* Cut what is still in flight (unacked), then write what is settled. */
    int cut = 0;
    for (int i = 0; i < ep->concurrency; i++) {
        slot *s = &ep->slots[i];
        if (!s->it) continue;
        curl_multi_remove_handle(ep->multi, s->easy);
        curl_slist_free_all(s->hdrs);
        s->hdrs = NULL;
        atomic_fetch_sub(&ep->inflight, 1);
        vdisp_set_state(ep, s->it, Q_READY);
        vdisp_window_drop(ep, s->it);
        s->it = NULL;
        cut++;
    }
    if (cut)
        vigil_log(VIGIL_LOG_WARN, "alerts", "webhook %s (%s): shutdown deadline passed, %d request%s cut (unacked, " "re-sent after restart)", ep->name, ep->label, cut, cut == 1 ? "" : "s");
    vdisp_flush_acks(ep, mono_ms(), 1);
    vdisp_flush_dead(ep, mono_ms(), 1);
    if (ep->nacks_delivered)
        vigil_log(VIGIL_LOG_INFO, "alerts", "webhook %s: %d delivered alert%s not acked (re-sent after restart)",
                ep->name, ep->nacks_delivered, ep->nacks_delivered == 1 ? "" : "s");
    while (ep->head) vdisp_window_drop(ep, ep->head);   /* unsettled dead letters: read again next run */
    free(buf);
    return NULL;
}

/* ---- create / destroy ---------------------------------------------------- */

static void free_endpoint(endpoint *ep) {
    if (ep->slots) {
        for (int i = 0; i < ep->concurrency; i++) {
            if (ep->slots[i].easy) {
                if (ep->multi && ep->slots[i].it) curl_multi_remove_handle(ep->multi, ep->slots[i].easy);
                curl_easy_cleanup(ep->slots[i].easy);
            }
            curl_slist_free_all(ep->slots[i].hdrs);
        }
        free(ep->slots);
    }
    if (ep->multi) curl_multi_cleanup(ep->multi);
    while (ep->head) vdisp_window_drop(ep, ep->head);
    for (int i = 0; i < ep->nacks; i++) free(ep->acks[i]);
    free(ep->acks);
    for (int i = 0; i < ep->nrules; i++) free(ep->rules[i]);
    free(ep->rules);
    free(ep->url);
    free(ep->label);
    vigil_webhook_signer_destroy(ep->signer);
}

static void free_all(vigil_dispatch *d) {
    for (int i = 0; d->eps && i < d->n; i++) free_endpoint(&d->eps[i]);
    free(d->eps);
    free(d);
}

static vigil_status setup_endpoint(vigil_dispatch *d, endpoint *ep, const vigil_endpoint_config *c, int index,
                                   const char *default_secret, vigil_error *err) {
    ep->d = d;
    vigil_dispatch_endpoint_name(c, index, ep->name, sizeof ep->name);
    if (!valid_name(ep->name))
        return vigil_error_set(err, VIGIL_EINVAL, "webhook endpoint %d: name '%s' must be 1..64 of "
                               "[A-Za-z0-9_-]", index + 1, ep->name);
    vigil_status s = vigil_webhook_url_label(c->url, &ep->label, err);
    if (s != VIGIL_OK) {
        char msg[sizeof err->msg];
        if (err) {
            snprintf(msg, sizeof msg, "%s", err->msg);
            vigil_error_set(err, s, "webhook endpoint %s: %s", ep->name, msg);
        }
        return s;
    }
    if (!(ep->url = strdup(c->url))) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
    const char *secret = c->secret && *c->secret ? c->secret : default_secret;
    if (secret && *secret) {
        s = vigil_webhook_signer_create(secret, &ep->signer, err);
        if (s != VIGIL_OK) {
            if (s == VIGIL_EINVAL)
                vigil_error_set(err, s, "webhook endpoint %s: secret must be \"whsec_\" followed by "
                                "base64", ep->name);
            return s;
        }
    }
    if (c->nrules < 0 || c->nrules > 32)
        return vigil_error_set(err, VIGIL_EINVAL, "webhook endpoint %s: 0..32 rules", ep->name);
    if (c->nrules) {
        ep->rules = calloc((size_t)c->nrules, sizeof *ep->rules);
        if (!ep->rules) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
    }
    for (int i = 0; i < c->nrules; i++) {
        if (!c->rules[i] || !*c->rules[i])
            return vigil_error_set(err, VIGIL_EINVAL, "webhook endpoint %s: rule %d is empty", ep->name, i + 1);
        ep->nrules = i + 1;
        if (!(ep->rules[i] = strdup(c->rules[i]))) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
    }
    ep->min_sev = 0;
    if (c->min_severity && *c->min_severity) {
        ep->min_sev = vdisp_severity_rank(c->min_severity);
        if (ep->min_sev < 0)
            return vigil_error_set(err, VIGIL_EINVAL, "webhook endpoint %s: min_severity '%s' is not one "
                                   "of info, low, medium, high, critical", ep->name, c->min_severity);
    }
    if (c->concurrency < 0 || c->concurrency > MAX_CONCURRENCY || c->timeout_ms < 0 || c->backoff_ms < 0 ||
        c->max_backoff_ms < 0 || c->horizon_ms < 0 || c->max_attempts < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "webhook endpoint %s: negative number or concurrency "
                               "over %d", ep->name, MAX_CONCURRENCY);
    ep->concurrency = c->concurrency ? c->concurrency : DEF_CONCURRENCY;
    ep->timeout_ms = c->timeout_ms ? c->timeout_ms : DEF_TIMEOUT_MS;
    ep->backoff_ms = c->backoff_ms ? c->backoff_ms : DEF_BACKOFF_MS;
    ep->max_backoff_ms = c->max_backoff_ms ? c->max_backoff_ms : DEF_MAX_BACKOFF_MS;
    ep->horizon_ms = c->horizon_ms ? c->horizon_ms : DEF_HORIZON_MS;
    ep->max_attempts = c->max_attempts;
    if (ep->max_backoff_ms < ep->backoff_ms) ep->max_backoff_ms = ep->backoff_ms;
    ep->rng = ((uint64_t)vigil_now_ms() << 16) ^ (uint64_t)(uintptr_t)ep ^ 0x9E3779B97F4A7C15ull;
    if (!ep->rng) ep->rng = 1;

    ep->multi = curl_multi_init();
    ep->slots = calloc((size_t)ep->concurrency, sizeof *ep->slots);
    if (!ep->multi || !ep->slots) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
    for (int i = 0; i < ep->concurrency; i++) {
        if (!(ep->slots[i].easy = curl_easy_init())) return vigil_error_set(err, VIGIL_ENOMEM, "webhook: out of memory");
        ep->slots[i].next_free = ep->free_slots;
        ep->free_slots = &ep->slots[i];
    }
    curl_multi_setopt(ep->multi, CURLMOPT_MAXCONNECTS, (long)ep->concurrency);
    return VIGIL_OK;
}

vigil_status vigil_dispatch_create(const vigil_endpoint_config *endpoints, int n,
                                   const char *default_secret, vigil_outbox *outbox,
                                   long shutdown_ms, vigil_dispatch **out, vigil_error *err) {
    if (!out) return vigil_error_set(err, VIGIL_EINVAL, "dispatch: NULL argument");
    *out = NULL;
    if (!outbox || n < 0 || (n > 0 && !endpoints) || shutdown_ms < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "dispatch: bad argument (outbox, endpoints, shutdown_ms)");
    if (n > MAX_ENDPOINTS)
        return vigil_error_set(err, VIGIL_EINVAL, "dispatch: at most %d endpoints", MAX_ENDPOINTS);
    vigil_status s = vigil_webhook_global_init(err);
    if (s != VIGIL_OK) return s;

    vigil_dispatch *d = calloc(1, sizeof *d);
    if (!d) return vigil_error_set(err, VIGIL_ENOMEM, "dispatch: out of memory");
    d->ob = outbox;
    d->shutdown_ms = shutdown_ms ? shutdown_ms : DEF_SHUTDOWN_MS;
    vigil_fault_due("");   /* VIGIL_FAULT is read now, once per process (fault.c) */
    if (n) {
        d->eps = calloc((size_t)n, sizeof *d->eps);
        if (!d->eps) {
            free(d);
            return vigil_error_set(err, VIGIL_ENOMEM, "dispatch: out of memory");
        }
    }
    for (int i = 0; s == VIGIL_OK && i < n; i++) {
        d->n = i + 1;
        s = setup_endpoint(d, &d->eps[i], &endpoints[i], i, default_secret, err);
        for (int k = 0; s == VIGIL_OK && k < i; k++)
            if (!strcmp(d->eps[k].name, d->eps[i].name))
                s = vigil_error_set(err, VIGIL_EINVAL, "webhook endpoint name '%s' used twice", d->eps[i].name);
    }
    if (s == VIGIL_OK) {
        /* Endpoint threads take no signals: the process's signal thread does. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (int i = 0; i < n; i++) {
            if (pthread_create(&d->eps[i].thread, NULL, run, &d->eps[i]) != 0) {
                s = vigil_error_set(err, VIGIL_EIO, "dispatch: cannot start the thread of endpoint %s",
                                    d->eps[i].name);
                break;
            }
            d->eps[i].started = 1;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    if (s != VIGIL_OK) {
        d->shutdown_ms = 0;
        atomic_store(&d->deadline_ms, mono_ms());
        atomic_store(&d->stopping, 1);
        for (int i = 0; i < d->n; i++)
            if (d->eps[i].started) {
                curl_multi_wakeup(d->eps[i].multi);
                pthread_join(d->eps[i].thread, NULL);
            }
        free_all(d);
        return s;
    }
    *out = d;
    return VIGIL_OK;
}

long vigil_dispatch_shutdown_ms(const vigil_dispatch *d) { return d ? d->shutdown_ms : 0; }

int vigil_dispatch_count(const vigil_dispatch *d) { return d ? d->n : 0; }

vigil_status vigil_dispatch_stats_get(vigil_dispatch *d, int i, vigil_dispatch_stats *st) {
    if (!d || !st || i < 0 || i >= d->n) return VIGIL_EINVAL;
    endpoint *ep = &d->eps[i];
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", ep->name);
    snprintf(st->label, sizeof st->label, "%s", ep->label);
    st->delivered = atomic_load(&ep->delivered);
    st->filtered = atomic_load(&ep->filtered);
    st->dead = atomic_load(&ep->dead);
    st->attempts = atomic_load(&ep->attempts);
    st->retries = atomic_load(&ep->retries);
    st->outbox_errors = atomic_load(&ep->outbox_errors);
    st->inflight = atomic_load(&ep->inflight);
    st->window = atomic_load(&ep->window);
    st->disabled = atomic_load(&ep->disabled_flag);
    for (size_t b = 0; b <= NBUCKETS; b++) st->hist[b] = atomic_load(&ep->hist[b]);
    st->hist_sum_us = atomic_load(&ep->hist_sum_us);
    st->hist_count = atomic_load(&ep->hist_count);
    return VIGIL_OK;
}

vigil_status vigil_dispatch_depth(vigil_dispatch *d, int i, uint64_t *n, vigil_error *err) {
    if (!d || !n || i < 0 || i >= d->n) return vigil_error_set(err, VIGIL_EINVAL, "dispatch: bad endpoint index");
    return d->ob->depth(d->ob, d->eps[i].name, n, err);
}

vigil_status vigil_dispatch_dead_letters(vigil_dispatch *d, const char *ep_name, int limit,
                                         char **json, vigil_error *err) {
    if (!d || !json) return vigil_error_set(err, VIGIL_EINVAL, "dispatch: NULL argument");
    return d->ob->list_dead(d->ob, ep_name, limit, json, err);
}

void vigil_dispatch_destroy(vigil_dispatch *d) {
    if (!d) return;
    atomic_store(&d->deadline_ms, mono_ms() + d->shutdown_ms);
    atomic_store(&d->stopping, 1);
    for (int i = 0; i < d->n; i++)
        if (d->eps[i].started) curl_multi_wakeup(d->eps[i].multi);
    for (int i = 0; i < d->n; i++)
        if (d->eps[i].started) pthread_join(d->eps[i].thread, NULL);
    free_all(d);
}
