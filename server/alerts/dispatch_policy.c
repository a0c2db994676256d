/* dispatch_policy.c — what becomes of each alert at a webhook endpoint: the
 * policy of dispatch.h, for the endpoint threads of dispatch.c.
 *
 * Why it is its own file: dispatch.c moves bytes (libcurl multi, slots,
 * scheduling by key); this file decides. An endpoint reads alerts from the
 * outbox into its window (at most WINDOW), filters them (shadow, rules,
 * min_severity: acked at once), and wraps the rest in the Standard Webhooks
 * envelope. After each attempt it classifies the answer: 2xx delivered
 * (histogram, ack), 408/429/5xx and transport errors retried after
 * backoff_ms × 2^(attempt−1) ±20 % (Retry-After honoured, everything capped
 * at max_backoff_ms) until horizon_ms or max_attempts, 410 disables the
 * endpoint, anything else is a dead letter. Acks and dead letters go to the
 * outbox in batches and are retried every second while the outbox fails.
 * Window states:
 *
 *   READY → FLIGHT → (done: ack) | WAIT (retry due later) → FLIGHT …
 *                               | DEAD (dead letter to write) → (done)
 *
 * Threads: everything here runs on the endpoint's own thread; only the
 * counters (atomics) are read elsewhere. */
#define _GNU_SOURCE
#include "dispatch_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vigil/clock.h"
#include "vigil/event.h"
#include "server/common/fault.h"
#include "server/common/log.h"

#define POLL_READ_MS 2            /* busy endpoint: look for new alerts this often (a read is cheap; 50 ms cost 90 ms of p99 latency) */
#define RETRY_OUTBOX_MS 1000      /* failed read/ack/dead: try again after */
#define LOG_EVERY_MS 1000
#define DISABLED_REASON "endpoint disabled: 410 Gone"

/* ---- small helpers ------------------------------------------------------- */

int vdisp_severity_rank(const char *s) {
    static const char *const names[] = {"info", "low", "medium", "high", "critical"};
    for (int i = 0; s && i < 5; i++)
        if (!strcasecmp(s, names[i])) return i;
    return -1;
}

/* xorshift64*: jitter only, no security role. */
static double rnd01(endpoint *ep) {
    uint64_t x = ep->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ep->rng = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static int valid_id(const char *id) {
    if (!id[0]) return 0;
    for (const char *p = id; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return 0;
    return 1;
}

/* Log a failure line, at most one per endpoint per LOG_EVERY_MS. */
static void log_limited(endpoint *ep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_limited(endpoint *ep, const char *fmt, ...) {
    long long now = mono_ms();
    if (ep->log_ms && now - ep->log_ms < LOG_EVERY_MS) {
        ep->quiet++;
        return;
    }
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ep->quiet)
        vigil_log(VIGIL_LOG_WARN, "alerts", "webhook %s (%s): %s (%lu more not shown)", ep->name, ep->label, msg,
                ep->quiet);
    else
        vigil_log(VIGIL_LOG_WARN, "alerts", "webhook %s (%s): %s", ep->name, ep->label, msg);
    ep->log_ms = now;
    ep->quiet = 0;
}

/* ---- window -------------------------------------------------------------- */

static void item_free(item *it) {
    if (!it) return;
    vigil_alert_record_free(&it->e);
    free(it->body);
    free(it);
}

static void count_state(endpoint *ep, int state, int delta) {
    switch (state) {
    case Q_READY: ep->nready += delta; break;
    case Q_FLIGHT: ep->ninflight += delta; break;
    case Q_WAIT: ep->nwait += delta; break;
    case Q_DEAD: ep->ndead += delta; break;
    }
}

void vdisp_set_state(endpoint *ep, item *it, int state) {
    count_state(ep, it->state, -1);
    it->state = state;
    count_state(ep, state, +1);
}

static void window_push(endpoint *ep, item *it) {
    it->next = NULL;
    it->prev = ep->tail;
    if (ep->tail) ep->tail->next = it;
    else ep->head = it;
    ep->tail = it;
    ep->nitems++;
    count_state(ep, it->state, +1);
    atomic_store(&ep->window, (unsigned long long)ep->nitems);
}

/* Unlink and free. */
void vdisp_window_drop(endpoint *ep, item *it) {
    if (it->prev) it->prev->next = it->next;
    else ep->head = it->next;
    if (it->next) it->next->prev = it->prev;
    else ep->tail = it->prev;
    ep->nitems--;
    count_state(ep, it->state, -1);
    atomic_store(&ep->window, (unsigned long long)ep->nitems);
    item_free(it);
}

/* Queue the ack of ref; delivered: 1 for a 2xx, 0 for a filtered alert
 * (which counter it joins once the ack is in the outbox). */
static int push_ack(endpoint *ep, const char *ref, int delivered) {
    if (ep->nacks == ep->capacks) {
        int cap = ep->capacks ? ep->capacks * 2 : 64;
        char **n = realloc(ep->acks, (size_t)cap * sizeof *n);
        if (!n) return -1;
        ep->acks = n;
        ep->capacks = cap;
    }
    char *r = strdup(ref);
    if (!r) return -1;
    ep->acks[ep->nacks++] = r;
    if (delivered) ep->nacks_delivered++;
    else ep->nacks_filtered++;
    return 0;
}

void vdisp_flush_acks(endpoint *ep, long long now, int force) {
    if (!ep->nacks || (!force && now < ep->ack_retry_ms)) return;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = ep->d->ob->ack(ep->d->ob, ep->name, (const char *const *)ep->acks, ep->nacks, &err);
    if (s != VIGIL_OK) {
        atomic_fetch_add(&ep->outbox_errors, 1);
        ep->ack_retry_ms = now + RETRY_OUTBOX_MS;
        log_limited(ep, "outbox ack of %d alert%s failed (retrying): %s", ep->nacks,
                    ep->nacks == 1 ? "" : "s", err.msg);
        return;
    }
    for (int i = 0; i < ep->nacks; i++) free(ep->acks[i]);
    ep->nacks = 0;
    /* counted now, not at the 2xx: "delivered" and "filtered" mean acked
     * (dispatch.h), so a reader that sees them also sees the outbox without
     * those alerts */
    atomic_fetch_add(&ep->delivered, (unsigned long long)ep->nacks_delivered);
    atomic_fetch_add(&ep->filtered, (unsigned long long)ep->nacks_filtered);
    ep->nacks_delivered = ep->nacks_filtered = 0;
}

/* The alert is finished at this endpoint without a delivery: to the
 * dead-letter list (written by flush_dead). */
static void to_dead(endpoint *ep, item *it, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void to_dead(endpoint *ep, item *it, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->why, sizeof it->why, fmt, ap);
    va_end(ap);
    vdisp_set_state(ep, it, Q_DEAD);
}

void vdisp_flush_dead(endpoint *ep, long long now, int force) {
    if (!ep->ndead || (!force && now < ep->dead_retry_ms)) return;
    item *it = ep->head;
    while (it) {
        item *next = it->next;
        if (it->state == Q_DEAD) {
            vigil_error err;
            vigil_error_clear(&err);
            vigil_status s = ep->d->ob->dead(ep->d->ob, ep->name, &it->e, it->why, it->attempts, &err);
            if (s != VIGIL_OK) {
                atomic_fetch_add(&ep->outbox_errors, 1);
                ep->dead_retry_ms = now + RETRY_OUTBOX_MS;
                log_limited(ep, "outbox dead letter of alert %s failed (retrying): %s", it->e.id, err.msg);
                return;
            }
            atomic_fetch_add(&ep->dead, 1);
            vdisp_window_drop(ep, it);
        }
        it = next;
    }
}

static void disable(endpoint *ep) {
    if (ep->disabled) return;
    ep->disabled = 1;
    atomic_store(&ep->disabled_flag, 1);
    vigil_log(VIGIL_LOG_WARN, "alerts", "webhook %s (%s): answered 410 Gone; endpoint disabled until restart, " "its alerts go to the dead-letter list", ep->name, ep->label);
    for (item *it = ep->head; it; it = it->next)
        if (it->state == Q_READY || it->state == Q_WAIT) to_dead(ep, it, DISABLED_REASON);
}

/* ---- reading ------------------------------------------------------------- */

static int wanted(const endpoint *ep, const vigil_alert_record *e) {
    if (e->mode == VIGIL_MODE_SHADOW) return 0;
    if (ep->nrules) {
        int hit = 0;
        for (int i = 0; i < ep->nrules && !hit; i++) hit = !strcmp(ep->rules[i], e->rule);
        if (!hit) return 0;
    }
    if (ep->min_sev > 0) {
        int r = vdisp_severity_rank(e->severity);
        if (r < ep->min_sev) return 0;
    }
    return 1;
}

/* Take one read entry (its json moves into the window or is freed).
 * -1 when out of memory: the entry is freed and the position stays before
 * it, so the next read returns it again. */
static int take(endpoint *ep, vigil_alert_record *e) {
    if (!wanted(ep, e)) {
        if (push_ack(ep, e->ref, 0) != 0) {
            vigil_alert_record_free(e);
            return -1;
        }
        snprintf(ep->after, sizeof ep->after, "%s", e->ref);
        vigil_alert_record_free(e);
        return 0;
    }
    item *it = calloc(1, sizeof *it);
    char ts[40];
    vigil_time_format_rfc3339(e->appended_ms > 0 ? e->appended_ms : vigil_now_ms(), ts, sizeof ts);
    static const char pre[] = "{\"type\":\"alert.created\",\"timestamp\":\"";
    static const char mid[] = "\",\"data\":";
    size_t blen = sizeof pre - 1 + strlen(ts) + sizeof mid - 1 + e->len + 1;
    char *body = it ? malloc(blen + 1) : NULL;
    if (!it || !body) {
        free(it);
        vigil_alert_record_free(e);
        return -1;
    }
    char *p = body;
    memcpy(p, pre, sizeof pre - 1); p += sizeof pre - 1;
    memcpy(p, ts, strlen(ts)); p += strlen(ts);
    memcpy(p, mid, sizeof mid - 1); p += sizeof mid - 1;
    memcpy(p, e->json, e->len); p += e->len;
    *p++ = '}';
    *p = '\0';
    snprintf(ep->after, sizeof ep->after, "%s", e->ref);
    it->e = *e;              /* json ownership moves */
    e->json = NULL;
    it->body = body;
    it->blen = blen;
    it->state = Q_READY;
    window_push(ep, it);
    if (!valid_id(it->e.id)) to_dead(ep, it, "alert id not usable as webhook-id");
    else if (ep->disabled) to_dead(ep, it, DISABLED_REASON);
    return 0;
}

void vdisp_do_read(endpoint *ep, vigil_alert_record *buf, int wait_ms) {
    int room = WINDOW - ep->nitems;
    if (room > READ_BATCH) room = READ_BATCH;
    int n = 0;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = ep->d->ob->read(ep->d->ob, ep->name, ep->after, buf, room, &n, wait_ms, &err);
    long long now = mono_ms();
    if (s != VIGIL_OK) {
        atomic_fetch_add(&ep->outbox_errors, 1);
        ep->next_read_ms = now + RETRY_OUTBOX_MS;
        log_limited(ep, "outbox read failed (retrying): %s", err.msg);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (take(ep, &buf[i]) != 0) {
            for (int k = i + 1; k < n; k++) vigil_alert_record_free(&buf[k]);
            ep->next_read_ms = now + RETRY_OUTBOX_MS;
            log_limited(ep, "out of memory taking alerts from the outbox (retrying)");
            return;
        }
    }
    /* A full batch: there may be more right away. Otherwise look again soon
     * (a busy endpoint) or block in the next read (an idle one). */
    ep->next_read_ms = n == room ? 0 : now + POLL_READ_MS;
}

/* ---- outcomes ------------------------------------------------------------ */

/* A failed attempt (it->why says why): another one after the backoff, or
 * the dead-letter list once the horizon would be passed or max_attempts
 * attempts were made. During shutdown
 * the alert is just left unacked. */
void vdisp_retry_or_dead(endpoint *ep, item *it, long retry_after_s) {
    long long now = mono_ms();
    if (atomic_load(&ep->d->stopping)) {
        vdisp_window_drop(ep, it);
        return;
    }
    if (ep->disabled) {
        to_dead(ep, it, DISABLED_REASON);
        return;
    }
    double delay = (double)ep->backoff_ms;
    for (int i = 1; i < it->attempts && delay < (double)ep->max_backoff_ms; i++) delay *= 2;
    if (delay > (double)ep->max_backoff_ms) delay = (double)ep->max_backoff_ms;
    delay *= 0.8 + 0.4 * rnd01(ep);
    if (retry_after_s > 0 && (double)retry_after_s * 1000.0 > delay) delay = (double)retry_after_s * 1000.0;
    if (delay > (double)ep->max_backoff_ms) delay = (double)ep->max_backoff_ms;
    long long d = (long long)delay;
    if (d < 1) d = 1;
    if (now + d - it->first_ms > ep->horizon_ms || (ep->max_attempts && it->attempts >= ep->max_attempts)) {
        char why[sizeof it->why];
        snprintf(why, sizeof why, "%s", it->why);
        log_limited(ep, "alert %s: giving up after %d attempt%s in %lld ms: %s", it->e.id, it->attempts,
                    it->attempts == 1 ? "" : "s", now - it->first_ms, why);
        to_dead(ep, it, "gave up after %d attempt%s in %lld ms: %s", it->attempts,
                it->attempts == 1 ? "" : "s", now - it->first_ms, why);
        return;
    }
    log_limited(ep, "alert %s: attempt %d failed: %s; retry in %lld ms", it->e.id, it->attempts, it->why, d);
    it->due_ms = now + d;
    vdisp_set_state(ep, it, Q_WAIT);
    atomic_fetch_add(&ep->retries, 1);
}

static void delivered(endpoint *ep, item *it) {
    if (it->e.appended_ms > 0) {
        long long lat = vigil_now_ms() - it->e.appended_ms;
        if (lat < 0) lat = 0;   /* clock skew between Redis and us */
        double sec = (double)lat / 1000.0;
        size_t b = 0;
        while (b < NBUCKETS && sec > BUCKETS[b]) b++;
        atomic_fetch_add(&ep->hist[b], 1);
        atomic_fetch_add(&ep->hist_sum_us, (unsigned long long)lat * 1000ull);
        atomic_fetch_add(&ep->hist_count, 1);
    }
    /* crash tests: VIGIL_FAULT=deliver:N dies between the 2xx and the ack */
    if (vigil_fault_due("deliver")) {
        vigil_log(VIGIL_LOG_INFO, "alerts", "VIGIL_FAULT: alert %s delivered to %s, not acked", it->e.id, ep->name);
        vigil_fault_kill("deliver");
    }
    if (push_ack(ep, it->e.ref, 1) != 0) {
        /* Not acked: re-sent after a restart (at-least-once). */
        log_limited(ep, "out of memory queueing the ack of alert %s", it->e.id);
    }
    vdisp_window_drop(ep, it);
}

/* ---- classifying an answer ----------------------------------------------- */

void vdisp_answered(endpoint *ep, item *it, CURLcode rc, long code, long retry_after_s, const char *errbuf) {
    if (rc == CURLE_OK) {
        snprintf(it->why, sizeof it->why, "HTTP %ld", code);
        if (code >= 200 && code <= 299) {
            delivered(ep, it);
        } else if (code == 410) {
            disable(ep);
            to_dead(ep, it, DISABLED_REASON);
        } else if (code == 408 || code == 429 || (code >= 500 && code <= 599)) {
            vdisp_retry_or_dead(ep, it, retry_after_s);
        } else if (ep->disabled) {
            to_dead(ep, it, DISABLED_REASON);
        } else {
            log_limited(ep, "alert %s: HTTP %ld is not retryable: dead letter", it->e.id, code);
            to_dead(ep, it, "HTTP %ld (not retryable)", code);
        }
        return;
    }
    snprintf(it->why, sizeof it->why, "%s", errbuf && errbuf[0] ? errbuf : curl_easy_strerror(rc));
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        to_dead(ep, it, "%s (not retryable)", curl_easy_strerror(rc));
        break;
    default:
        vdisp_retry_or_dead(ep, it, 0);
    }
}
