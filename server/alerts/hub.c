/* hub.c — the alert hub: a ring of recent alerts, served to HTTP viewers as
 * a list (GET /v1/alerts, in hub_list.c) and as a live Server-Sent Events
 * feed (GET /v1/alerts/stream, here).
 *
 * Sink stage of the flow: workers publish alerts here from several threads;
 * libmicrohttpd (MHD 0.9.75) threads read them. One mutex guards the ring and
 * the list of open streams; nothing under it blocks on the network.
 *
 * Ring. `cap` slots; alert number `seq` (1, 2, …) lives in slot
 * (seq - 1) % cap while seq > last_seq - count. Each slot is one allocation
 * holding the ready-made SSE frame ("id: N\nevent: alert\ndata: <json>\n\n")
 * followed by the rule, severity and key strings; the JSON text the list
 * handler needs is a slice of that frame, so nothing is stored twice. When
 * the ring is full, publishing overwrites the oldest alert (documented
 * policy: viewers are best-effort; webhooks and NATS carry the durable copy).
 *
 * SSE without busy-waiting. A stream is an MHD response built with
 * MHD_create_response_from_callback (unknown size → chunked). MHD calls the
 * content reader whenever it can send more. When the reader has nothing to
 * send it must not return 0 and leave the connection in MHD's loop: in
 * internal-polling mode MHD would call it again at once, i.e. spin (the
 * MHD_ContentReaderCallback docs: "0 is legal unless MHD is started in
 * 'internal' sockets polling mode (since this would cause busy-waiting)").
 * Instead the reader, holding the hub mutex, marks the stream `waiting`,
 * calls MHD_suspend_connection(conn) and returns 0. The 0.9.75 header states
 * that "the only safe way to call this function is to call it from the
 * MHD_AccessHandlerCallback or MHD_ContentReaderCallback" (the doxygen was
 * fixed in Dec 2021, 0.9.75's release), and the source shows why it works:
 * try_ready_chunked_body() turns a 0 into state CHUNKED_BODY_UNREADY and
 * returns, the suspended connection leaves the poll set, and on resume
 * MHD_connection_handle_idle() re-enters CHUNKED_BODY_UNREADY and calls the
 * reader again. A suspended connection costs no CPU and no thread.
 * The publisher, under the same mutex, resumes every `waiting` stream
 * (MHD_resume_connection is documented safe from any thread at any time; it
 * wakes the MHD thread through its inter-thread channel, which
 * MHD_ALLOW_SUSPEND_RESUME enables). Because `waiting` is set and the
 * connection suspended under the mutex the publisher takes, a wakeup cannot
 * be lost: either the reader sees the new alert, or the publisher sees
 * `waiting`. A resume that lands between the reader's unlock and its
 * `return 0` is fine too: MHD records it (`resuming`) and applies it on its
 * next loop. Verified by tests/unit/test_hub.c: alerts published after the
 * stream is idle arrive at once, and an idle open stream costs < 0.2 s CPU
 * per second (measured: ~0).
 *
 * Keepalive. MHD does not time out or watch suspended connections, so a
 * timer thread (one per hub, sleeping on a condition variable — and not at
 * all while nobody is subscribed) marks every stream `keepalive_due` every
 * keepalive period and resumes the waiting ones; the reader then sends
 * ": keepalive\n\n". That keeps proxies from closing the stream and makes a
 * vanished client visible (the write fails, MHD closes the connection and
 * frees the response, whose free callback unlinks the stream). Every second
 * the same thread also peeks at each suspended stream's socket: a client
 * that closed its end (EOF) is resumed and ended at once, so it does not hold
 * a stream slot (limits.max_sse_clients) until a keepalive write fails.
 *
 * Shutdown. MHD_stop_daemon panics if a connection is still suspended.
 * vigil_hub_close() sets `closing` and resumes every waiting stream; each
 * reader then finishes the frame it was sending and returns END_OF_STREAM.
 * Streams hold a reference on the hub, so whichever of vigil_hub_destroy()
 * and the last stream's free callback runs last frees it: MHD_stop_daemon
 * may come before or after vigil_hub_destroy(), never a use-after-free.
 *
 * Requirements on the daemon: MHD_ALLOW_SUSPEND_RESUME, not
 * MHD_USE_THREAD_PER_CONNECTION (checked per request; 500 otherwise). */
#include "hub.h"
#include "hub_int.h"
#include "server/common/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "vigil/clock.h"
#include "vigil/event.h"   /* vigil_time_parse_rfc3339 */

/* "id: " + 20 digits + "\nevent: alert\ndata: " fits in this. */
#define PREFIX_MAX 48
#define SSE_BLOCK 16384
#define SSE_RETRY "retry: 3000\n\n"
#define SSE_KEEPALIVE ": keepalive\n\n"
#define MAX_CAP 10000000u

struct stream {
    struct stream *prev, *next;
    vigil_hub *hub;
    struct MHD_Connection *conn;
    uint64_t next_seq;     /* next alert to send */
    bool waiting;          /* suspended by the reader; resume on news */
    bool keepalive_due;
    bool started;          /* "retry:" line sent */
    bool gone;             /* the client closed its end while the stream was suspended */
    char *pend;            /* rest of a frame larger than MHD's buffer */
    size_t pend_len, pend_off, pend_cap;
};


/* ---- helpers -------------------------------------------------------------- */

static void hub_free(vigil_hub *hub)
{
    pthread_cond_destroy(&hub->cv);
    pthread_mutex_destroy(&hub->mu);
    free(hub);
}

static void abs_deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Resume every suspended stream. Caller holds hub->mu. */
static void wake_waiting(vigil_hub *hub)
{
    for (struct stream *s = hub->streams; s; s = s->next) {
        if (s->waiting) {
            s->waiting = false;
            MHD_resume_connection(s->conn);
        }
    }
}

/* Resume the suspended streams whose client has closed its end (a peek at
 * the socket reads EOF or an error), so that MHD ends them now and their slot
 * (limits.max_sse_clients, the per-address connection count) is free within
 * a second, not after the next keepalive write fails. Caller holds hub->mu. */
static void reap_gone(vigil_hub *hub)
{
    for (struct stream *s = hub->streams; s; s = s->next) {
        if (!s->waiting)
            continue;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
            continue;
        char c;
        ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            s->gone = true;
            s->waiting = false;
            MHD_resume_connection(s->conn);
        }
    }
}

#define REAP_MS 1000   /* how often suspended streams are checked for a closed client */

/* The timer: sleeps while nobody is subscribed; else every REAP_MS resumes
 * the streams whose client went away, and every keepalive period marks each
 * stream and resumes the idle ones. */
static void *keepalive_main(void *arg)
{
    vigil_hub *hub = arg;
    pthread_mutex_lock(&hub->mu);
    struct timespec ka;
    abs_deadline(&ka, hub->keepalive_ms);
    while (!hub->closing) {
        if (hub->nstreams == 0) {
            pthread_cond_wait(&hub->cv, &hub->mu);
            abs_deadline(&ka, hub->keepalive_ms);
            continue;
        }
        struct timespec dl;
        abs_deadline(&dl, hub->keepalive_ms < REAP_MS ? hub->keepalive_ms : REAP_MS);
        int rc = 0;
        while (!hub->closing && hub->nstreams > 0 && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&hub->cv, &hub->mu, &dl);
        if (hub->closing || rc != ETIMEDOUT)
            continue;
        reap_gone(hub);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec < ka.tv_sec || (now.tv_sec == ka.tv_sec && now.tv_nsec < ka.tv_nsec))
            continue;
        abs_deadline(&ka, hub->keepalive_ms);
        for (struct stream *s = hub->streams; s; s = s->next)
            s->keepalive_due = true;
        wake_waiting(hub);
    }
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

vigil_status vigil_hub_create(size_t cap, vigil_hub **out)
{
    if (!out)
        return VIGIL_EINVAL;
    *out = NULL;
    if (cap == 0)
        cap = VIGIL_HUB_DEFAULT_CAP;
    if (cap > MAX_CAP)
        return VIGIL_EINVAL;
    vigil_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return VIGIL_ENOMEM;
    hub->ring = calloc(cap, sizeof *hub->ring);
    if (!hub->ring) {
        free(hub);
        return VIGIL_ENOMEM;
    }
    hub->cap = cap;
    hub->refs = 1;
    hub->keepalive_ms = VIGIL_HUB_KEEPALIVE_MS;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&hub->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(hub->ring);
        free(hub);
        return VIGIL_ENOMEM;
    }
    if (pthread_mutex_init(&hub->mu, NULL) != 0) {
        pthread_cond_destroy(&hub->cv);
        free(hub->ring);
        free(hub);
        return VIGIL_ENOMEM;
    }
    if (pthread_create(&hub->ka_thread, NULL, keepalive_main, hub) != 0) {
        free(hub->ring);
        hub_free(hub);
        return VIGIL_EIO;
    }
    hub->ka_started = true;
    *out = hub;
    return VIGIL_OK;
}

void vigil_hub_close(vigil_hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->mu);
    bool join = false;
    if (!hub->closing) {
        hub->closing = true;
        join = hub->ka_started;
        hub->ka_started = false;
        pthread_cond_broadcast(&hub->cv);
    }
    /* Every stream must leave suspension so that its reader can end it and
     * MHD_stop_daemon finds no suspended connection. */
    wake_waiting(hub);
    pthread_mutex_unlock(&hub->mu);
    if (join)
        pthread_join(hub->ka_thread, NULL);
}

void vigil_hub_destroy(vigil_hub *hub)
{
    if (!hub)
        return;
    vigil_hub_close(hub);
    vhub_follow_free(hub);   /* while our reference holds the hub (a stream's release may free it below) */
    pthread_mutex_lock(&hub->mu);
    /* Closed streams never read the ring again, so it can go now. */
    struct slot *ring = hub->ring;
    size_t cap = hub->cap;
    hub->ring = NULL;
    hub->count = 0;
    bool last = --hub->refs == 0;
    pthread_mutex_unlock(&hub->mu);
    for (size_t i = 0; i < cap; i++)
        free(ring[i].block);
    free(ring);
    if (last)
        hub_free(hub);
}

void vigil_hub_set_max_streams(vigil_hub *hub, size_t max)
{
    pthread_mutex_lock(&hub->mu);
    hub->max_streams = max;
    pthread_mutex_unlock(&hub->mu);
}

vigil_status vigil_hub_set_keepalive(vigil_hub *hub, int ms)
{
    if (!hub || ms < 10)
        return VIGIL_EINVAL;
    pthread_mutex_lock(&hub->mu);
    hub->keepalive_ms = ms;
    pthread_cond_broadcast(&hub->cv);
    pthread_mutex_unlock(&hub->mu);
    return VIGIL_OK;
}

vigil_status vigil_hub_stats(vigil_hub *hub, vigil_hub_counters *out)
{
    if (!hub || !out)
        return VIGIL_EINVAL;
    pthread_mutex_lock(&hub->mu);
    out->published = hub->published;
    out->last_seq = hub->last_seq;
    out->stored = hub->count;
    out->subscribers = hub->nstreams;
    out->refused = hub->refused;
    pthread_mutex_unlock(&hub->mu);
    return VIGIL_OK;
}

/* ---- publish -------------------------------------------------------------- */

/* The id and mode of an alert JSON as vigil_alert_to_json writes it: "id"
 * first, "mode" among the fixed members before any text a user controls
 * (key, evidence), so the first "mode" member is the alert's. Anything
 * else: id "" and mode -1 (unknown). */
static void alert_head(const char *json, size_t len, char id[33], signed char *mode)
{
    static const char idp[] = "{\"id\":\"", mp[] = "\"mode\":\"";
    id[0] = '\0';
    *mode = -1;
    if (len >= sizeof idp - 1 + 33 && memcmp(json, idp, sizeof idp - 1) == 0 &&
        json[sizeof idp - 1 + 32] == '"') {
        memcpy(id, json + sizeof idp - 1, 32);
        id[32] = '\0';
    }
    size_t lim = len < 512 ? len : 512;
    for (size_t i = 0; i + sizeof mp - 1 + 6 <= lim; i++)
        if (memcmp(json + i, mp, sizeof mp - 1) == 0) {
            const char *v = json + i + sizeof mp - 1;
            *mode = memcmp(v, "shadow\"", 7) == 0 ? 1 : memcmp(v, "active\"", 7) == 0 ? 0 : -1;
            break;
        }
}

void vigil_hub_set_triage(vigil_hub *hub, vigil_hub_triage_fn fn, void *ud)
{
    pthread_mutex_lock(&hub->mu);
    hub->triage = fn;
    hub->triage_ud = ud;
    pthread_mutex_unlock(&hub->mu);
}

bool vigil_hub_find(vigil_hub *hub, const char *id, char *rule, size_t rule_n)
{
    bool found = false;
    pthread_mutex_lock(&hub->mu);
    if (hub->ring && hub->count > 0 && id && strlen(id) == 32) {
        uint64_t lo = oldest_seq(hub);
        for (uint64_t seq = hub->last_seq; seq >= lo && seq > 0 && !found; seq--) {
            const struct slot *s = slot_of(hub, seq);
            if (memcmp(s->id, id, 33) == 0) {
                snprintf(rule, rule_n, "%s", s->rule);
                found = true;
            }
        }
    }
    pthread_mutex_unlock(&hub->mu);
    return found;
}

vigil_status vigil_hub_publish(vigil_hub *hub, const char *json, size_t len,
                               const char *rule, const char *severity,
                               const char *key, int64_t ts_ms)
{
    if (!hub || !json || len == 0)
        return VIGIL_EINVAL;
    if (len > VIGIL_HUB_MAX_ALERT_BYTES)
        return VIGIL_ETOOBIG;
    if (!rule)
        rule = "";
    if (!severity)
        severity = "";
    if (!key)
        key = "";
    size_t rl = strlen(rule), sl = strlen(severity), kl = strlen(key);
    if (rl > 4096 || sl > 64 || kl > 4096)
        return VIGIL_ETOOBIG;

    /* [prefix area PREFIX_MAX][json len]["\n\n"][rule\0][severity\0][key\0] */
    size_t total = PREFIX_MAX + len + 2 + rl + 1 + sl + 1 + kl + 1;
    char *block = malloc(total);
    if (!block)
        return VIGIL_ENOMEM;
    char *j = block + PREFIX_MAX;
    for (size_t i = 0; i < len; i++)
        j[i] = (json[i] == '\n' || json[i] == '\r') ? ' ' : json[i];
    j[len] = '\n';
    j[len + 1] = '\n';
    char *r = j + len + 2;
    memcpy(r, rule, rl + 1);
    char *sv = r + rl + 1;
    memcpy(sv, severity, sl + 1);
    char *k = sv + sl + 1;
    memcpy(k, key, kl + 1);

    char id[33];
    signed char mode;
    alert_head(json, len, id, &mode);
    int64_t at_ms = vigil_now_ms();
    char prefix[PREFIX_MAX + 1];
    char *old = NULL;
    pthread_mutex_lock(&hub->mu);
    if (!hub->ring) {            /* destroyed: a caller bug, refuse quietly */
        pthread_mutex_unlock(&hub->mu);
        free(block);
        return VIGIL_EINVAL;
    }
    if (hub->idx && id[0] && vhub_idx_has(hub, id)) {   /* cluster mode: this alert is kept already */
        hub->dups++;
        pthread_mutex_unlock(&hub->mu);
        free(block);
        return VIGIL_ECONFLICT;
    }
    uint64_t seq = hub->last_seq + 1;
    int pl = snprintf(prefix, sizeof prefix, "id: %" PRIu64 "\nevent: alert\ndata: ", seq);
    /* pl < PREFIX_MAX always: 4 + 20 + 20 = 44 */
    memcpy(j - pl, prefix, (size_t)pl);
    struct slot *s = &hub->ring[(seq - 1) % hub->cap];
    old = s->block;
    s->seq = seq;
    s->block = block;
    s->frame = j - pl;
    s->frame_len = (size_t)pl + len + 2;
    s->json = j;
    s->json_len = len;
    s->rule = r;
    s->severity = sv;
    s->key = k;
    s->ts = ts_ms;
    s->at_ms = at_ms;
    memcpy(s->id, id, sizeof s->id);
    s->mode = mode;
    hub->last_seq = seq;
    hub->published++;
    if (hub->count < hub->cap)
        hub->count++;
    if (hub->idx && id[0])
        vhub_idx_add(hub, seq);
    wake_waiting(hub);
    pthread_mutex_unlock(&hub->mu);
    free(old);
    return VIGIL_OK;
}

/* ---- GET /v1/alerts/stream ------------------------------------------------ */

/* Keep the rest of a frame that did not fit into MHD's buffer. */
static bool stash(struct stream *st, const char *p, size_t n)
{
    if (n > st->pend_cap) {
        char *np = realloc(st->pend, n);
        if (!np)
            return false;
        st->pend = np;
        st->pend_cap = n;
    }
    memcpy(st->pend, p, n);
    st->pend_len = n;
    st->pend_off = 0;
    return true;
}

/* Copy up to max bytes of `p` into out; stash the rest. Returns bytes copied,
 * or -1 when the rest could not be stashed. */
static ssize_t emit(struct stream *st, char *out, size_t max, const char *p, size_t n)
{
    if (n <= max) {
        memcpy(out, p, n);
        return (ssize_t)n;
    }
    if (!stash(st, p + max, n - max))
        return -1;
    memcpy(out, p, max);
    return (ssize_t)max;
}

/* MHD_ContentReaderCallback: runs on the MHD thread that owns the connection,
 * with the response's mutex held. See the file header for the protocol. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    struct stream *st = cls;
    vigil_hub *hub = st->hub;
    (void)pos;
    if (max == 0)
        return 0;   /* cannot happen with MHD's buffer sizes; do not suspend */

    pthread_mutex_lock(&hub->mu);
    if (st->pend_off < st->pend_len) {
        size_t n = st->pend_len - st->pend_off;
        if (n > max)
            n = max;
        memcpy(out, st->pend + st->pend_off, n);
        st->pend_off += n;
        pthread_mutex_unlock(&hub->mu);
        return (ssize_t)n;
    }
    if (hub->closing) {
        pthread_mutex_unlock(&hub->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (st->gone)
        goto fail;   /* the client closed: MHD ends the connection and frees the stream */

    size_t used = 0;
    if (!st->started) {
        ssize_t n = emit(st, out, max, SSE_RETRY, sizeof SSE_RETRY - 1);
        if (n < 0)
            goto fail;
        st->started = true;
        used = (size_t)n;
    }
    while (used < max && st->pend_off >= st->pend_len &&
           st->next_seq <= hub->last_seq && hub->count > 0) {
        uint64_t lo = oldest_seq(hub);
        if (st->next_seq < lo)
            st->next_seq = lo;   /* fell behind the ring: skip what is gone */
        const struct slot *s = slot_of(hub, st->next_seq);
        if (s->frame_len > max - used && used > 0)
            break;               /* send what we have; this one goes next */
        ssize_t n = emit(st, out + used, max - used, s->frame, s->frame_len);
        if (n < 0)
            goto fail;
        used += (size_t)n;
        st->next_seq++;
    }
    if (used == 0 && st->keepalive_due) {
        ssize_t n = emit(st, out, max, SSE_KEEPALIVE, sizeof SSE_KEEPALIVE - 1);
        if (n < 0)
            goto fail;
        used = (size_t)n;
    }
    if (used > 0) {
        st->keepalive_due = false;
        pthread_mutex_unlock(&hub->mu);
        return (ssize_t)used;
    }
    /* Nothing to send: leave MHD's loop until a publisher (or the keepalive
     * timer, or vigil_hub_close) resumes us. Both happen under hub->mu. */
    st->waiting = true;
    MHD_suspend_connection(st->conn);
    pthread_mutex_unlock(&hub->mu);
    return 0;

fail:
    pthread_mutex_unlock(&hub->mu);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Unlink a stream and drop its hub reference. Frees the hub when it was the
 * last reference (the owner already destroyed it). */
static void stream_release(struct stream *st)
{
    vigil_hub *hub = st->hub;
    pthread_mutex_lock(&hub->mu);
    if (st->prev)
        st->prev->next = st->next;
    else
        hub->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    hub->nstreams--;
    bool last = --hub->refs == 0;
    pthread_mutex_unlock(&hub->mu);
    free(st->pend);
    free(st);
    if (last)
        hub_free(hub);
}

/* MHD_ContentReaderFreeCallback: the response is gone (stream ended, client
 * vanished, or the daemon stopped). */
static void stream_free(void *cls)
{
    stream_release(cls);
}

static bool daemon_can_suspend(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
    if (!ci || !ci->daemon)
        return false;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_FLAGS);
    if (!di)
        return false;
    return (di->flags & MHD_ALLOW_SUSPEND_RESUME) == MHD_ALLOW_SUSPEND_RESUME &&
           (di->flags & MHD_USE_THREAD_PER_CONNECTION) == 0;
}

enum MHD_Result vigil_hub_handle_stream(vigil_hub *hub, struct MHD_Connection *conn)
{
    if (!daemon_can_suspend(conn))
        return vhub_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Streaming unavailable",
                       "the HTTP daemon was started without MHD_ALLOW_SUSPEND_RESUME "
                       "or with a thread per connection");

    const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!last || !*last)
        last = vhub_arg(conn, "last_event_id");
    uint64_t last_id = 0;
    if (last && !vhub_parse_u64(last, &last_id))
        return vhub_problem(conn, MHD_HTTP_BAD_REQUEST, "Bad Last-Event-ID",
                       "expected the decimal sequence number of an alert event");

    struct stream *st = calloc(1, sizeof *st);
    if (!st)
        return vhub_problem(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "Out of memory", NULL);
    st->hub = hub;
    st->conn = conn;

    pthread_mutex_lock(&hub->mu);
    if (hub->closing) {
        pthread_mutex_unlock(&hub->mu);
        free(st);
        return vhub_problem(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Shutting down", NULL);
    }
    if (hub->max_streams && hub->nstreams >= hub->max_streams) {
        size_t max = hub->max_streams;
        hub->refused++;
        pthread_mutex_unlock(&hub->mu);
        free(st);
        char d[160];
        snprintf(d, sizeof d, "%zu alert streams are open, the most this server serves (limits.max_sse_clients); "
                 "retry later", max);
        return vhub_problem_retry(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "Too many streams", d);
    }
    if (!last) {
        st->next_seq = hub->last_seq + 1;
    } else {
        uint64_t lo = hub->count ? oldest_seq(hub) : hub->last_seq + 1;
        st->next_seq = last_id + 1;
        /* An id from the future (the server restarted and numbering began
         * again) or one the ring no longer holds: replay all that is kept;
         * receivers deduplicate by alert id. */
        if (last_id > hub->last_seq || st->next_seq < lo)
            st->next_seq = lo;
    }
    st->next = hub->streams;
    if (hub->streams)
        hub->streams->prev = st;
    hub->streams = st;
    hub->nstreams++;
    hub->refs++;
    pthread_cond_broadcast(&hub->cv);   /* the keepalive timer has work */
    pthread_mutex_unlock(&hub->mu);

    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, SSE_BLOCK, stream_read, st, stream_free);
    if (!resp) {
        stream_release(st);   /* MHD never calls the free callback here */
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    if (vigil_log_request())
        MHD_add_response_header(resp, "X-Request-Id", vigil_log_request());
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);   /* frees st through stream_free if not queued */
    return ret;
}
