/* test_crash.c — issue 4, "nothing lost, nothing twice", proven by killing
 * the server.
 *
 * JetStream ingest (DESIGN.md §7) promises at-least-once in and effectively
 * once applied (a message is acked only after the state it changed is
 * committed with its stream sequence); the webhook outbox (§8) promises
 * at-least-once out, the alert id being the idempotency key. This test holds
 * `vigil serve --jetstream` to that on the real card data. The first
 * SLICE_ROWS transactions of ../shared/data are cut into a scratch directory;
 * `vigil replay` over them gives the reference, the set of active alert ids
 * (ids are deterministic, §3); `vigil feed --jetstream` publishes them to the
 * stream VIGIL_EVENTS; the server must deliver exactly the reference's ids
 * to a real Standard Webhooks receiver (tests/tools/webhook_receiver.c,
 * signatures checked), however it is interrupted:
 *
 *  a. Redis store (Redis with appendfsync always): the server SIGKILLs itself
 *     at each fault point (VIGIL_FAULT=<point>:<n> with fetch, feed, commit,
 *     ack, deliver; n from the printed seed) and is SIGKILLed once by the test
 *     at a random moment, in a random order, restarted after each kill; then
 *     it runs until the receiver has every expected id.
 *  b. The same with the memory store (snapshot and outbox file in --data-dir).
 *  c. Redis SIGKILLed while the server works, the rest of the feed published
 *     while it is down, then restarted on its AOF.
 *  d. nats-server SIGKILLed while the server works and restarted on its store;
 *     the rest of the feed is published after the restart (intake resumes).
 *  e. Bad input on NATS and HTTP: malformed JSON, no key, no time on a
 *     vigil.events.* subject; an oversized body (413), a bad NDJSON line (400
 *     naming it); each refused or counted, and the good events around them
 *     still alert (and nothing of a refused request does).
 *
 * Asserted for each case: the distinct webhook-ids equal the expected set
 * (missing and unexpected ids printed, 20 of each at most); every signature
 * is valid; no shadow alert went to the webhook; a repeated vt_delivery
 * (allowed: at-least-once) has the same webhook-id and the same body "data";
 * in the end every stream message is acked by the consumer "vigil"; a final
 * SIGTERM stops the server with status 0. Each case prints
 * "crash test: N alerts, D duplicate deliveries, K kills".
 *
 * The server runs with --idle-timeout 0: no rule of rules/fraud needs a
 * timer, and a restart must not look like an idle source whose watermark
 * moves on with the wall clock (that would make the rest of the feed late).
 * With the memory store it snapshots every 250 ms (--snapshot-interval), so
 * that its "commit" fault point (a snapshot) comes a few times per second
 * and its acks, which wait for a snapshot, come soon.
 *
 * VIGIL_CRASH_SEED=S repeats a run's schedule of faults; VIGIL_CRASH_CASES
 * (e.g. "a,d") runs only those cases. Without the data the
 * test prints SKIP and passes, except under CI=true. Every wait has a
 * deadline and every phase prints what it does, so a CI log shows where a
 * run stopped; on a failure the server's log is printed. When everything
 * passes the file takes about 45 s on 2 cores (a and b about 10 s each with
 * their six kills, c and d about 10 s, e 3 s, each feed of the slice 1 s); a
 * stuck server costs each case at most about two minutes of deadlines. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "deliveries.h"
#include "harness.h"

#ifndef VIGIL_BINARY_DIR
#define VIGIL_BINARY_DIR "build"
#endif
#ifndef VIGIL_SOURCE_DIR
#define VIGIL_SOURCE_DIR "."
#endif

#define TX_DATA "fdh-transactions-2018-04-to-07.csv.gz"
#define SLICE_ROWS 100000L        /* about 10.5 days of the card data; ~236 active alerts */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define TIME_FIELD "tx_datetime"
#define ID_FIELD "transaction_id"
#define RULES VIGIL_SOURCE_DIR "/rules/fraud"
#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define RECEIVER_BIN VIGIL_BINARY_DIR "/webhook_receiver"
#define STREAM "VIGIL_EVENTS"     /* the server's defaults (DESIGN.md §7) */
#define CONSUMER "vigil"

#define RUN_TIMEOUT_MS 60000      /* a replay or a feed of the slice (about 1 s each) */
#define START_TIMEOUT_MS 20000    /* vigil serve printing its port */
#define READY_TIMEOUT_MS 20000    /* GET /readyz answering 200 */
#define FAULT_TIMEOUT_MS 20000    /* a server with VIGIL_FAULT killing itself (each takes < 1 s) */
#define KILL_MIN_ADVANCE 1000    /* the test's own kill -9: once the consumer acked this many more ... */
#define KILL_MAX_ADVANCE 8000     /* ... at most this many (see run_kill) */
#define KILL_MAX_WAIT_MS 10000    /* ... or after this long */
#define FAULT_N_MIN 2             /* VIGIL_FAULT=<point>:<n>, n in [MIN, MAX] */
#define FAULT_N_MAX 20
#define SNAPSHOT_INTERVAL "250ms" /* memory store: how often a worker snapshots (and may then ack) */
#define MEM_COMMIT_N_MAX 4        /* memory store: "commit" is a snapshot, 4 per second per worker */
#define FINAL_TIMEOUT_MS 180000   /* the last run: every expected id at the receiver */
#define STALL_MS 40000            /* ... or give up when nothing moves for this long */
#define PROGRESS_TIMEOUT_MS 30000 /* c, d: the server has started working */
#define DOWN_MS 2000              /* c, d: how long Redis or NATS stays down */
#define QUIET_MS 1500             /* after the last expected id: time for stray deliveries */
#define ACK_TIMEOUT_MS 20000      /* every stream message acked */
#define STOP_TIMEOUT_MS 15000     /* SIGTERM to exit */
#define NATS_API_MS 3000          /* the test's own JetStream requests */
#define LOG_TAIL 8000

/* ---- small things ------------------------------------------------------------------- */

static char *dir;
static uint64_t seed;

/* Record a failure with a formatted message (CUnit copies it), and print it. */
/* splitmix64: a tiny generator whose sequence depends only on the seed. */
static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rand_between(uint64_t *s, int lo, int hi)
{
    return lo + (int)(next_rand(s) % (uint64_t)(hi - lo + 1));
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* ---- sets of alert ids ---------------------------------------------------------------- */

/* ---- the slice and its reference -------------------------------------------------------- */

static char slice_csv[512], part1_csv[512], part2_csv[512];
static vt_idset ref_active, ref_shadow;
static int have_ref;

/* The header and the first SLICE_ROWS rows of the gzip'd CSV into
 * slice_csv; the first half of them into part1_csv, the rest into part2_csv
 * (c and d publish the halves around a restart). Rows are in time order in
 * the file. Returns the rows written or -1. */
static long cut_slice(const char *gz)
{
    gzFile in = gzopen(gz, "rb");
    if (!in)
        return -1;
    gzbuffer(in, 1 << 18);
    FILE *all = fopen(slice_csv, "w"), *p1 = fopen(part1_csv, "w"), *p2 = fopen(part2_csv, "w");
    char line[4096];
    long rows = -1;
    if (all && p1 && p2 && gzgets(in, line, sizeof line) && strstr(line, TIME_FIELD) && strstr(line, ID_FIELD)) {
        fputs(line, all);
        fputs(line, p1);
        fputs(line, p2);
        rows = 0;
        while (rows < SLICE_ROWS && gzgets(in, line, sizeof line)) {
            fputs(line, all);
            fputs(line, rows < SLICE_ROWS / 2 ? p1 : p2);
            rows++;
        }
    }
    gzclose(in);
    int ok = 1;
    if (all)
        ok &= fclose(all) == 0;
    if (p1)
        ok &= fclose(p1) == 0;
    if (p2)
        ok &= fclose(p2) == 0;
    return ok ? rows : -1;
}

static void test_reference(void)
{
    const char *gz = vt_data_path(TX_DATA);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gz);
    snprintf(slice_csv, sizeof slice_csv, "%s/slice.csv", dir);
    snprintf(part1_csv, sizeof part1_csv, "%s/part1.csv", dir);
    snprintf(part2_csv, sizeof part2_csv, "%s/part2.csv", dir);
    long long t0 = vt_now_ms();
    long rows = cut_slice(gz);
    printf("  slice: the first %ld transactions (%s, halves %s and %s) in %lld ms\n", rows, slice_csv, part1_csv,
           part2_csv, vt_now_ms() - t0);
    CU_ASSERT_EQUAL_FATAL(rows, SLICE_ROWS);

    char out[512], log[512], in[600];
    snprintf(out, sizeof out, "%s/replay.jsonl", dir);
    snprintf(log, sizeof log, "%s/replay.log", dir);
    snprintf(in, sizeof in, "tx=%s", slice_csv);
    const char *argv[] = { VIGIL_BIN, "replay", "--rules", RULES, "--input", in, "--time-field", TIME_FIELD,
                           "--id-field", ID_FIELD, "--output", out, NULL };
    t0 = vt_now_ms();
    int rc = vt_run(argv, log, RUN_TIMEOUT_MS);
    printf("  replay (the reference): exit %d in %lld ms\n", rc, vt_now_ms() - t0);
    if (rc != 0)
        vt_dump_log(log, LOG_TAIL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(vt_load_alerts(out, NULL, &ref_active, &ref_shadow), 0);
    printf("  reference: %zu active alerts (the expected webhook ids), %zu shadow\n", ref_active.n, ref_shadow.n);
    CU_ASSERT_FATAL(ref_active.n > 100);
    have_ref = 1;
}

/* ---- JetStream, seen from the test ------------------------------------------------------- */

typedef struct jsview {
    int stream_found, consumer_found;
    uint64_t msgs;           /* in the stream */
    uint64_t ack_floor;      /* consumer: stream sequence acked with everything before it (see js_view) */
    uint64_t pending;        /* consumer: not yet delivered */
    int64_t ack_pending;     /* consumer: delivered, not yet acked */
} jsview;

/* Stream and consumer state; -1 when NATS does not answer. The server may
 * recreate its consumer at a start sequence (at its ack floor + 1): such a
 * consumer reports floor 0 until it acks something, though everything
 * before its start was acked; the floor is then start - 1. */
static int js_view(const char *url, jsview *v)
{
    memset(v, 0, sizeof *v);
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, NATS_API_MS);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = NATS_API_MS;
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    int rc = -1;
    if (s == NATS_OK) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        s = js_GetStreamInfo(&si, js, STREAM, &jo, &jerr);
        if (s == NATS_OK) {
            v->stream_found = 1;
            v->msgs = si->State.Msgs;
            jsStreamInfo_Destroy(si);
            jsConsumerInfo *ci = NULL;
            s = js_GetConsumerInfo(&ci, js, STREAM, CONSUMER, &jo, &jerr);
            if (s == NATS_OK) {
                v->consumer_found = 1;
                v->ack_floor = ci->AckFloor.Stream;
                if (ci->Config && ci->Config->DeliverPolicy == js_DeliverByStartSequence &&
                    ci->Config->OptStartSeq > v->ack_floor + 1)
                    v->ack_floor = ci->Config->OptStartSeq - 1;
                v->pending = ci->NumPending;
                v->ack_pending = ci->NumAckPending;
                jsConsumerInfo_Destroy(ci);
            }
            rc = (s == NATS_OK || s == NATS_NOT_FOUND) ? 0 : -1;
        } else if (s == NATS_NOT_FOUND) {
            rc = 0;
        }
    }
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

/* ---- the rig: NATS, maybe Redis, the receiver, and vigil serve runs ------------------------ */

typedef struct rig {
    const char *name;
    char dir[512], nats_dir[600], redis_dir[600], data_dir[600];
    char nats_url[64], redis_url[64];
    int nats_port, redis_port, use_redis;
    vt_proc *nats, *redis;
    vt_proc *rcv;
    int rcv_port;
    char rcv_out[600], rcv_log[600], rcv_url[64];
    vt_proc *srv;             /* the running vigil serve, or NULL */
    int srv_port;
    char srv_log[700], srv_base[64];
    int runs, kills, feeds;
} rig;

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* NATS with JetStream (its own store dir), Redis with AOF always when
 * use_redis, and the webhook receiver. 0, or -1 after a failure message. */
static int rig_up(rig *r, const char *name, int use_redis)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->use_redis = use_redis;
    snprintf(r->dir, sizeof r->dir, "%s/%s", dir, name);
    snprintf(r->nats_dir, sizeof r->nats_dir, "%s/nats", r->dir);
    snprintf(r->redis_dir, sizeof r->redis_dir, "%s/redis", r->dir);
    snprintf(r->data_dir, sizeof r->data_dir, "%s/data", r->dir);
    if (make_dir(r->dir) || make_dir(r->nats_dir) || make_dir(r->redis_dir) || make_dir(r->data_dir)) {
        VT_FAILF("[%s] cannot create directories under %s", name, r->dir);
        return -1;
    }
    printf("  [%s] starting nats-server -js%s and the webhook receiver in %s\n", name,
           use_redis ? ", redis-server (appendonly yes, appendfsync always)" : "", r->dir);
    if (!(r->nats = vt_start_nats(&r->nats_port, r->nats_dir))) {
        VT_FAILF("[%s] nats-server did not start", name);
        return -1;
    }
    snprintf(r->nats_url, sizeof r->nats_url, "nats://127.0.0.1:%d", r->nats_port);
    if (use_redis) {
        if (!(r->redis = vt_start_redis_aof(&r->redis_port, r->redis_dir))) {
            VT_FAILF("[%s] redis-server did not start", name);
            return -1;
        }
        snprintf(r->redis_url, sizeof r->redis_url, "redis://127.0.0.1:%d", r->redis_port);
    }
    snprintf(r->rcv_out, sizeof r->rcv_out, "%s/webhooks.jsonl", r->dir);
    snprintf(r->rcv_log, sizeof r->rcv_log, "%s/receiver.log", r->dir);
    const char *argv[] = { RECEIVER_BIN, "--out", r->rcv_out, "--port", "0", "--secret", SECRET, NULL };
    if (!(r->rcv = vt_spawn(argv, r->rcv_log)) ||
        (r->rcv_port = vt_wait_log_number(r->rcv, r->rcv_log, "PORT ", START_TIMEOUT_MS)) < 0) {
        VT_FAILF("[%s] webhook_receiver did not start within %d s", name, START_TIMEOUT_MS / 1000);
        vt_dump_log(r->rcv_log, LOG_TAIL);
        return -1;
    }
    snprintf(r->rcv_url, sizeof r->rcv_url, "http://127.0.0.1:%d/", r->rcv_port);
    return 0;
}

static void rig_down(rig *r)
{
    if (r->srv)
        vt_kill(r->srv, SIGKILL);
    vt_kill(r->rcv, SIGTERM);
    vt_kill(r->nats, SIGTERM);
    vt_kill(r->redis, SIGTERM);
    memset(r, 0, sizeof *r);
}

/* `vigil feed --jetstream` of one CSV; then the stream must hold
 * expect_msgs messages. 0, or -1 after a failure message. */
static int rig_feed(rig *r, const char *csv, uint64_t expect_msgs)
{
    char log[700], in[600];
    snprintf(log, sizeof log, "%s/feed-%d.log", r->dir, ++r->feeds);
    snprintf(in, sizeof in, "tx=%s", csv);
    const char *argv[] = { VIGIL_BIN, "feed", "--input", in, "--nats", r->nats_url, "--jetstream",
                           "--time-field", TIME_FIELD, "--id-field", ID_FIELD, NULL };
    long long t0 = vt_now_ms();
    int rc = vt_run(argv, log, RUN_TIMEOUT_MS);
    jsview v;
    int vrc = js_view(r->nats_url, &v);
    printf("  [%s] feed --jetstream %s: exit %d in %lld ms; stream %s holds %llu messages (expected %llu)\n", r->name,
           strrchr(csv, '/') + 1, rc, vt_now_ms() - t0, STREAM, (unsigned long long)v.msgs,
           (unsigned long long)expect_msgs);
    if (rc != 0) {
        VT_FAILF("[%s] vigil feed --jetstream exited %d", r->name, rc);
        vt_dump_log(log, LOG_TAIL);
        return -1;
    }
    if (vrc != 0 || !v.stream_found || v.msgs != expect_msgs) {
        VT_FAILF("[%s] stream %s: %s %llu messages, expected %llu", r->name, STREAM,
              vrc != 0 ? "NATS did not answer;" : !v.stream_found ? "not found;" : "holds",
              (unsigned long long)v.msgs, (unsigned long long)expect_msgs);
        vt_dump_log(log, LOG_TAIL);
        return -1;
    }
    return 0;
}

/* Spawn `vigil serve` (does not wait for it). fault: "point:n" or NULL. */
static int serve_spawn(rig *r, const char *fault)
{
    char tag[64] = "";
    if (fault) {
        snprintf(tag, sizeof tag, "-%s", fault);
        for (char *c = tag; *c; c++)
            if (*c == ':')
                *c = '-';
    }
    snprintf(r->srv_log, sizeof r->srv_log, "%s/vigil-%d%s.log", r->dir, ++r->runs, tag);
    const char *argv[40];
    int i = 0;
    argv[i++] = VIGIL_BIN;
    argv[i++] = "serve";
    argv[i++] = "--rules";
    argv[i++] = RULES;
    argv[i++] = "--listen";
    argv[i++] = "127.0.0.1:0";
    argv[i++] = "--nats";
    argv[i++] = r->nats_url;
    argv[i++] = "--jetstream";
    if (r->use_redis) {
        argv[i++] = "--redis";
        argv[i++] = r->redis_url;
    }
    argv[i++] = "--webhook";
    argv[i++] = r->rcv_url;
    argv[i++] = "--time-field";
    argv[i++] = TIME_FIELD;
    argv[i++] = "--id-field";
    argv[i++] = ID_FIELD;
    argv[i++] = "--data-dir";
    argv[i++] = r->data_dir;
    if (!r->use_redis) {
        argv[i++] = "--snapshot-interval";
        argv[i++] = SNAPSHOT_INTERVAL;
    }
    argv[i++] = "--workers";
    argv[i++] = "2";
    argv[i++] = "--idle-timeout";
    argv[i++] = "0";
    argv[i] = NULL;
    char fault_env[96];
    snprintf(fault_env, sizeof fault_env, "VIGIL_FAULT=%s", fault ? fault : "");
    const char *env[] = { fault ? fault_env : "VIGIL_FAULT", NULL };
    r->srv_port = 0;
    r->srv = vt_spawn_env(argv, env, r->srv_log);
    if (!r->srv) {
        VT_FAILF("[%s] cannot spawn %s", r->name, VIGIL_BIN);
        return -1;
    }
    return 0;
}

/* Wait for the running server to print its port. 0, or -1 after a failure. */
static int serve_wait_port(rig *r)
{
    r->srv_port = vt_wait_log_number(r->srv, r->srv_log, "listening on http://127.0.0.1:", START_TIMEOUT_MS);
    if (r->srv_port > 0) {
        snprintf(r->srv_base, sizeof r->srv_base, "http://127.0.0.1:%d", r->srv_port);
        return 0;
    }
    if (!vt_alive(r->srv)) {
        char how[96];
        vt_describe_status(r->srv->status, how, sizeof how);
        VT_FAILF("[%s] vigil serve (run %d) exited (%s) before listening; log %s", r->name, r->runs, how, r->srv_log);
    } else {
        VT_FAILF("[%s] vigil serve (run %d) did not print its port within %d s; log %s", r->name, r->runs,
              START_TIMEOUT_MS / 1000, r->srv_log);
    }
    vt_dump_log(r->srv_log, LOG_TAIL);
    vt_kill(r->srv, SIGKILL);
    r->srv = NULL;
    return -1;
}

static int serve_start(rig *r)
{
    return serve_spawn(r, NULL) == 0 ? serve_wait_port(r) : -1;
}

/* GET /readyz until 200. */
static int serve_wait_ready(rig *r)
{
    char url[128];
    snprintf(url, sizeof url, "%s/readyz", r->srv_base);
    long long deadline = vt_now_ms() + READY_TIMEOUT_MS;
    long st = 0;
    while (vt_now_ms() < deadline && vt_alive(r->srv)) {
        if (vt_wait_port(r->srv_port, 100) == 0) {   /* no transport error per poll in the log */
            char *body = vt_http_ex("GET", url, NULL, 0, NULL, NULL, 2000, &st, NULL);
            free(body);
            if (st == 200)
                return 0;
        }
        vt_sleep_ms(100);
    }
    VT_FAILF("[%s] vigil serve was not ready (GET /readyz: %ld) within %d s", r->name, st, READY_TIMEOUT_MS / 1000);
    return -1;
}

/* SIGTERM: the server must exit with status 0 within STOP_TIMEOUT_MS. */
static void serve_stop_clean(rig *r)
{
    if (!r->srv)
        return;
    long long t0 = vt_now_ms();
    kill(r->srv->pid, SIGTERM);
    int exited = vt_wait_exit(r->srv, STOP_TIMEOUT_MS);
    char how[96] = "still running";
    if (exited)
        vt_describe_status(r->srv->status, how, sizeof how);
    printf("  [%s] SIGTERM: %s after %lld ms\n", r->name, how, vt_now_ms() - t0);
    if (!exited || !WIFEXITED(r->srv->status) || WEXITSTATUS(r->srv->status) != 0) {
        VT_FAILF("[%s] vigil serve did not exit cleanly within %d s of SIGTERM (%s)", r->name, STOP_TIMEOUT_MS / 1000,
              how);
        vt_dump_log(r->srv_log, LOG_TAIL);
    }
    vt_kill(r->srv, SIGKILL);
    r->srv = NULL;
}

/* ---- what the receiver got --------------------------------------------------------------- */

/* ---- waiting for the outcome --------------------------------------------------------------- */

/* Every message of the stream acked by the consumer: a message left
 * unacked (a rejected one, or an ack lost while NATS was down) stays pending
 * for the consumer's AckWait, holds the ack floor back, and is fetched again
 * after every restart. */
static void check_all_acked(rig *r)
{
    long long deadline = vt_now_ms() + ACK_TIMEOUT_MS;
    jsview v;
    int rc;
    for (;;) {
        rc = js_view(r->nats_url, &v);
        if (rc == 0 && v.consumer_found && v.pending == 0 && v.ack_pending == 0)
            break;
        if (vt_now_ms() > deadline) {
            VT_FAILF("[%s] not every stream message was acked within %d s of the last expected vt_delivery: %s; %llu "
                  "messages, ack floor %llu, %llu not yet delivered, %lld delivered and not acked (JetStream "
                  "redelivers those only after the consumer's AckWait, and every restart fetches from the floor)",
                  r->name, ACK_TIMEOUT_MS / 1000,
                  rc != 0 ? "NATS did not answer" : !v.consumer_found ? "no consumer '" CONSUMER "'" : "consumer '"
                  CONSUMER "'", (unsigned long long)v.msgs, (unsigned long long)v.ack_floor,
                  (unsigned long long)v.pending, (long long)v.ack_pending);
            return;
        }
        vt_sleep_ms(250);
    }
    printf("  [%s] consumer %s: all %llu messages acked (ack floor %llu)\n", r->name, CONSUMER,
           (unsigned long long)v.msgs, (unsigned long long)v.ack_floor);
}

/* The running server until the receiver has every id of want: 0, or -1
 * after a failure (deadline, no progress for STALL_MS, or the server died). */
static int wait_delivered(rig *r, const vt_idset *want, int timeout_ms)
{
    long long t0 = vt_now_ms(), deadline = t0 + timeout_ms, changed = t0, last_print = t0;
    size_t have = 0, prev_have = (size_t)-1;
    long lines = 0, prev_lines = -1;
    uint64_t prev_floor = (uint64_t)-1;
    jsview v;
    memset(&v, 0, sizeof v);
    for (;;) {
        vt_idset got = { 0 };
        lines = vt_received_ids(r->rcv_out, &got);
        have = vt_count_present(&got, want);
        vt_set_free(&got);
        if (have == want->n) {
            printf("  [%s] receiver has all %zu expected ids after %.1f s (%ld deliveries)\n", r->name, want->n,
                   (double)(vt_now_ms() - t0) / 1000.0, lines);
            return 0;
        }
        if (!vt_alive(r->srv)) {
            char how[96];
            vt_describe_status(r->srv->status, how, sizeof how);
            VT_FAILF("[%s] vigil serve died (%s) with %zu of %zu expected ids delivered; log %s", r->name, how, have,
                  want->n, r->srv_log);
            vt_dump_log(r->srv_log, LOG_TAIL);
            vt_kill(r->srv, SIGKILL);
            r->srv = NULL;
            return -1;
        }
        js_view(r->nats_url, &v);
        long long now = vt_now_ms();
        if (have != prev_have || lines != prev_lines || v.ack_floor != prev_floor) {
            changed = now;
            prev_have = have;
            prev_lines = lines;
            prev_floor = v.ack_floor;
        }
        if (now - last_print >= 10000) {
            printf("  [%s] ... %zu of %zu expected ids, %ld deliveries, consumer ack floor %llu of %llu after %lld s\n",
                   r->name, have, want->n, lines, (unsigned long long)v.ack_floor, (unsigned long long)v.msgs,
                   (now - t0) / 1000);
            last_print = now;
        }
        if (now > deadline || now - changed > STALL_MS) {
            VT_FAILF("[%s] server did not deliver every expected alert within %d s%s: %zu of %zu ids received "
                  "(%ld deliveries), consumer %s ack floor %llu of %llu messages, %lld awaiting ack",
                  r->name, (int)((now - t0) / 1000), now > deadline ? "" : " (nothing moved for 40 s)",
                  have, want->n,
                  lines, v.consumer_found ? "'" CONSUMER "'" : "(not found)", (unsigned long long)v.ack_floor,
                  (unsigned long long)v.msgs, (long long)v.ack_pending);
            vt_dump_log(r->srv_log, LOG_TAIL);
            return -1;
        }
        vt_sleep_ms(500);
    }
}

/* After wait_delivered: a moment for stray deliveries, every message acked,
 * a clean SIGTERM, then every assertion on the deliveries. */
static void finish(rig *r, const vt_idset *want, const vt_idset *shadow)
{
    vt_sleep_ms(QUIET_MS);
    check_all_acked(r);
    serve_stop_clean(r);
    vt_check_deliveries(r->name, r->rcv_out, r->kills, want, shadow);
}

/* Wait until the running server has visibly started working: the consumer
 * acked something or a webhook arrived. */
static int wait_progress(rig *r)
{
    long long deadline = vt_now_ms() + PROGRESS_TIMEOUT_MS;
    jsview v;
    for (;;) {
        long lines = vt_received_ids(r->rcv_out, NULL);
        if (js_view(r->nats_url, &v) == 0 && (v.ack_floor > 0 || lines > 0)) {
            printf("  [%s] server is working: consumer ack floor %llu of %llu, %ld deliveries\n", r->name,
                   (unsigned long long)v.ack_floor, (unsigned long long)v.msgs, lines);
            return 0;
        }
        if (!vt_alive(r->srv) || vt_now_ms() > deadline) {
            VT_FAILF("[%s] server made no progress within %d s (%s): consumer %s, ack floor 0, no webhook", r->name,
                  PROGRESS_TIMEOUT_MS / 1000, vt_alive(r->srv) ? "running" : "it exited",
                  v.consumer_found ? "'" CONSUMER "' exists" : "'" CONSUMER "' not found");
            vt_dump_log(r->srv_log, LOG_TAIL);
            return -1;
        }
        vt_sleep_ms(50);
    }
}

/* ---- a and b: kill -9 at every phase ------------------------------------------------------- */

static const char *const FAULT_POINTS[] = { "fetch", "feed", "commit", "ack", "deliver" };
#define NFAULTS ((int)(sizeof FAULT_POINTS / sizeof FAULT_POINTS[0]))

typedef struct step {
    const char *point;        /* NULL: the test's own kill -9 */
    int n;                    /* fault: the n-th time; kill: messages acked first */
} step;

/* A run with VIGIL_FAULT=point:n. 0 when the server SIGKILLed itself, 1
 * when it did not within FAULT_TIMEOUT_MS (the test kills it), 2 when it
 * crashed some other way, -1 when it exited with a status. */
static int run_fault(rig *r, const char *point, int n)
{
    char fault[64];
    snprintf(fault, sizeof fault, "%s:%d", point, n);
    printf("  [%s] run %d: VIGIL_FAULT=%s (SIGKILL itself the %d-th time at '%s')\n", r->name, r->runs + 1, fault, n,
           point);
    long long t0 = vt_now_ms();
    if (serve_spawn(r, fault) != 0)
        return -1;
    if (vt_wait_exit(r->srv, FAULT_TIMEOUT_MS)) {
        int st = r->srv->status;
        vt_kill(r->srv, SIGKILL);   /* reaped: frees the handle */
        r->srv = NULL;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
            r->kills++;
            printf("  [%s]   killed itself at %s after %lld ms\n", r->name, fault, vt_now_ms() - t0);
            return 0;
        }
        char how[96];
        vt_describe_status(st, how, sizeof how);
        VT_FAILF("[%s] vigil serve with VIGIL_FAULT=%s %s (%s) before reaching the fault point; log %s", r->name,
              fault, WIFSIGNALED(st) ? "crashed" : "exited", how, r->srv_log);
        vt_dump_log(r->srv_log, LOG_TAIL);
        /* A crash is one more interruption to recover from: go on. An exit
         * with a status is a server that refuses to run: stop here. */
        return WIFSIGNALED(st) ? 2 : -1;
    }
    VT_FAILF("[%s] server did not reach fault point %s within %d s (VIGIL_FAULT not implemented, or less than %d "
          "'%s' left to do); killing it", r->name, fault, FAULT_TIMEOUT_MS / 1000, n, point);
    vt_kill(r->srv, SIGKILL);
    r->srv = NULL;
    r->kills++;
    return 1;
}

/* A run killed by the test at a random moment of its work: once the
 * consumer's ack floor moved `advance` messages past where this run started
 * (the server takes 100 000 events in a second or two, so a moment in wall
 * clock time would mostly fall after the work), or after KILL_MAX_WAIT_MS
 * whatever happened. 0, 2 when it crashed first, -1 when it did not start. */
static int run_kill(rig *r, int advance)
{
    jsview v;
    uint64_t from = js_view(r->nats_url, &v) == 0 ? v.ack_floor : 0;
    printf("  [%s] run %d: kill -9 by the test once the ack floor passes %llu (+%d)\n", r->name, r->runs + 1,
           (unsigned long long)(from + (uint64_t)advance), advance);
    if (serve_start(r) != 0)
        return -1;
    long long t0 = vt_now_ms(), until = t0 + KILL_MAX_WAIT_MS;
    int reached = 0;
    while (!reached && vt_now_ms() < until && vt_alive(r->srv)) {
        reached = js_view(r->nats_url, &v) == 0 && v.ack_floor >= from + (uint64_t)advance;
        if (!reached)
            vt_sleep_ms(5);
    }
    if (!reached && vt_alive(r->srv))
        printf("  [%s]   the ack floor stayed at %llu for %d s: killing it anyway\n", r->name,
               (unsigned long long)v.ack_floor, KILL_MAX_WAIT_MS / 1000);
    if (!vt_alive(r->srv)) {
        char how[96];
        vt_describe_status(r->srv->status, how, sizeof how);
        VT_FAILF("[%s] vigil serve %s on its own (%s) before the test's kill -9; log %s", r->name,
              WIFSIGNALED(r->srv->status) ? "crashed" : "exited", how, r->srv_log);
        vt_dump_log(r->srv_log, LOG_TAIL);
        int crashed = WIFSIGNALED(r->srv->status);
        vt_kill(r->srv, SIGKILL);
        r->srv = NULL;
        return crashed ? 2 : -1;
    }
    kill(r->srv->pid, SIGKILL);
    vt_wait_exit(r->srv, 5000);
    vt_kill(r->srv, SIGKILL);
    r->srv = NULL;
    r->kills++;
    js_view(r->nats_url, &v);
    printf("  [%s]   killed after %lld ms, ack floor now %llu\n", r->name, vt_now_ms() - t0,
           (unsigned long long)v.ack_floor);
    return 0;
}

static void crash_case(const char *name, int use_redis, uint64_t case_seed)
{
    CU_ASSERT_FATAL(have_ref);
    long long t0 = vt_now_ms();
    rig r;
    if (rig_up(&r, name, use_redis) != 0)
        goto out;
    /* The whole slice, then once more: Nats-Msg-Id makes the second a no-op. */
    if (rig_feed(&r, slice_csv, (uint64_t)SLICE_ROWS) != 0 || rig_feed(&r, slice_csv, (uint64_t)SLICE_ROWS) != 0)
        goto out;

    /* The schedule: every fault point once and one kill by the test, shuffled.
     * Even if every run went as far as it may (fetch and ack: n batches of
     * 1000; feed and commit: n worker batches, or with the memory store n
     * snapshots, a few per second; deliver: n webhooks, about 420 events each
     * here; the kill: KILL_MAX_ADVANCE and a little), it leaves work for the
     * runs after it: each fault point is reached. */
    uint64_t rs = case_seed;
    step steps[NFAULTS + 1];
    for (int i = 0; i < NFAULTS; i++) {
        int hi = !use_redis && strcmp(FAULT_POINTS[i], "commit") == 0 ? MEM_COMMIT_N_MAX : FAULT_N_MAX;
        steps[i] = (step){ FAULT_POINTS[i], rand_between(&rs, FAULT_N_MIN, hi) };
    }
    steps[NFAULTS] = (step){ NULL, rand_between(&rs, KILL_MIN_ADVANCE, KILL_MAX_ADVANCE) };
    for (int i = NFAULTS; i > 0; i--) {
        int j = rand_between(&rs, 0, i);
        step t = steps[i];
        steps[i] = steps[j];
        steps[j] = t;
    }
    printf("  [%s] schedule:", name);
    for (int i = 0; i <= NFAULTS; i++)
        if (steps[i].point)
            printf(" %s:%d", steps[i].point, steps[i].n);
        else
            printf(" kill-9@+%d", steps[i].n);
    printf("\n");

    int missed = 0;
    for (int i = 0; i <= NFAULTS; i++) {
        int rc = steps[i].point ? run_fault(&r, steps[i].point, steps[i].n) : run_kill(&r, steps[i].n);
        if (rc < 0)
            goto out;   /* the server does not run: nothing more to learn here */
        missed = rc == 1 ? missed + 1 : 0;
        if (missed == 2) {
            printf("  [%s] two fault points in a row were not reached: skipping the other kills\n", name);
            break;
        }
    }
    jsview v;
    if (js_view(r.nats_url, &v) == 0)
        printf("  [%s] after %d kills: consumer ack floor %llu of %llu, %ld deliveries so far\n", name, r.kills,
               (unsigned long long)v.ack_floor, (unsigned long long)v.msgs, vt_received_ids(r.rcv_out, NULL));
    printf("  [%s] run %d: no fault, until every expected id is delivered (at most %d s)\n", name, r.runs + 1,
           FINAL_TIMEOUT_MS / 1000);
    if (serve_start(&r) != 0 || serve_wait_ready(&r) != 0 ||
        wait_delivered(&r, &ref_active, FINAL_TIMEOUT_MS) != 0) {
        if (r.srv)
            serve_stop_clean(&r);
        vt_check_deliveries(r.name, r.rcv_out, r.kills, &ref_active, &ref_shadow);   /* what did arrive, for the log */
        goto out;
    }
    finish(&r, &ref_active, &ref_shadow);
out:
    rig_down(&r);
    printf("  [%s] %.1f s\n", name, (double)(vt_now_ms() - t0) / 1000.0);
}

static void test_crash_redis(void)
{
    crash_case("a-redis", 1, seed ^ 0xA);
}

static void test_crash_memory(void)
{
    crash_case("b-memory", 0, seed ^ 0xB);
}

/* ---- c and d: Redis, then NATS, restarted under the server ---------------------------------- */

static void restart_case(const char *name, int restart_redis)
{
    CU_ASSERT_FATAL(have_ref);
    long long t0 = vt_now_ms();
    rig r;
    if (rig_up(&r, name, 1) != 0 || rig_feed(&r, part1_csv, (uint64_t)(SLICE_ROWS / 2)) != 0)
        goto out;
    printf("  [%s] run 1: vigil serve on the first half of the slice\n", name);
    if (serve_start(&r) != 0 || wait_progress(&r) != 0)
        goto out;
    if (restart_redis) {
        printf("  [%s] kill -9 redis-server; the second half is published while it is down\n", name);
        vt_kill(r.redis, SIGKILL);
        r.redis = NULL;
        if (rig_feed(&r, part2_csv, (uint64_t)SLICE_ROWS) != 0)
            goto out;
        vt_sleep_ms(DOWN_MS);
        if (!vt_alive(r.srv))
            VT_FAILF("[%s] vigil serve exited while Redis was down (it must wait for it); log %s", name, r.srv_log);
        printf("  [%s] restarting redis-server on port %d with its AOF\n", name, r.redis_port);
        if (!(r.redis = vt_restart_redis_aof(NULL, SIGKILL, r.redis_port, r.redis_dir))) {
            VT_FAILF("[%s] redis-server did not restart on port %d", name, r.redis_port);
            goto out;
        }
    } else {
        printf("  [%s] kill -9 nats-server; down for %d ms\n", name, DOWN_MS);
        vt_kill(r.nats, SIGKILL);
        r.nats = NULL;
        vt_sleep_ms(DOWN_MS);
        if (!vt_alive(r.srv))
            VT_FAILF("[%s] vigil serve exited while NATS was down (it must reconnect); log %s", name, r.srv_log);
        printf("  [%s] restarting nats-server on port %d with its store\n", name, r.nats_port);
        if (!(r.nats = vt_restart_nats(NULL, SIGKILL, r.nats_port, r.nats_dir))) {
            VT_FAILF("[%s] nats-server did not restart on port %d", name, r.nats_port);
            goto out;
        }
        /* The stream survived; the second half arrives after the restart. */
        if (rig_feed(&r, part2_csv, (uint64_t)SLICE_ROWS) != 0)
            goto out;
    }
    if (!vt_alive(r.srv)) {
        /* Already reported; a fresh server still shows whether anything was lost. */
        vt_dump_log(r.srv_log, LOG_TAIL);
        vt_kill(r.srv, SIGKILL);
        r.srv = NULL;
        printf("  [%s] run %d: a fresh vigil serve\n", name, r.runs + 1);
        if (serve_start(&r) != 0)
            goto out;
    }
    printf("  [%s] waiting for every expected id (at most %d s)\n", name, FINAL_TIMEOUT_MS / 1000);
    if (wait_delivered(&r, &ref_active, FINAL_TIMEOUT_MS) != 0) {
        if (r.srv)
            serve_stop_clean(&r);
        vt_check_deliveries(r.name, r.rcv_out, r.kills, &ref_active, &ref_shadow);
        goto out;
    }
    finish(&r, &ref_active, &ref_shadow);
out:
    rig_down(&r);
    printf("  [%s] %.1f s\n", name, (double)(vt_now_ms() - t0) / 1000.0);
}

static void test_redis_restart(void)
{
    restart_case("c-redis-restart", 1);
}

static void test_nats_restart(void)
{
    restart_case("d-nats-restart", 0);
}

/* ---- e: bad input on NATS and HTTP ----------------------------------------------------------- */

/* A transaction on its own customer and terminal with amount 500: exactly
 * one large_amount alert when applied. "minute" is past 2018-05-01T00:00Z. */
static void tx_json(char *buf, size_t n, const char *id, int who, int minute)
{
    snprintf(buf, n,
             "{\"type\":\"tx\",\"transaction_id\":\"%s\",\"tx_datetime\":\"2018-05-01T%02d:%02d:00Z\","
             "\"customer_id\":%d,\"terminal_id\":%d,\"tx_amount\":500}",
             id, minute / 60, minute % 60, who, who);
}

typedef struct counters {
    double malformed, no_key;
} counters;

static double metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

static int read_counters(rig *r, counters *c)
{
    char url[128];
    long st;
    snprintf(url, sizeof url, "%s/metrics", r->srv_base);
    char *t = vt_http("GET", url, NULL, 0, NULL, &st);
    if (!t || st != 200) {
        free(t);
        return -1;
    }
    c->malformed = metric(t, "vigil_events_rejected_total{reason=\"malformed\"}");
    c->no_key = metric(t, "vigil_events_rejected_total{reason=\"no_key\"}");
    free(t);
    return c->malformed < 0 || c->no_key < 0 ? -1 : 0;
}

/* js_Publish one raw message to subject; 0 when the stream stored it. */
static int js_raw(const char *url, const char *subject, const char *data)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = NATS_API_MS;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (s == NATS_OK)
        s = js_Publish(&pa, js, subject, data, (int)strlen(data), NULL, &jerr);
    jsPubAck_Destroy(pa);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return s == NATS_OK ? 0 : -1;
}

/* POST to /v1/events; the status, the body (caller frees) in *body. */
static long post(rig *r, const char *body, size_t len, const char *ctype, char **answer)
{
    char url[128];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/events", r->srv_base);
    *answer = vt_http_ex("POST", url, body, len, ctype, NULL, 60000, &st, NULL);
    return st;
}

static void test_bad_input(void)
{
    long long t0 = vt_now_ms();
    rig r;
    vt_idset want_nats = { 0 }, want_all = { 0 }, shadow = { 0 }, none = { 0 };
    char *ans = NULL, *big = NULL;
    if (rig_up(&r, "e-bad-input", 0) != 0)
        goto out;

    /* The good events, and the reference over them. n* go through NATS, h*
     * through HTTP; refused ones (x*) would each alert too if applied. */
    char n1[256], n2[256], h1[256], h2[256], h3[256], path[700], line[300];
    tx_json(n1, sizeof n1, "n1", 910001, 0);
    tx_json(n2, sizeof n2, "n2", 910002, 5);
    tx_json(h1, sizeof h1, "h1", 910003, 10);
    tx_json(h2, sizeof h2, "h2", 910004, 20);
    tx_json(h3, sizeof h3, "h3", 910005, 21);
    char good[1400], nats1[700], nats2[700];
    snprintf(good, sizeof good, "%s\n%s\n%s\n%s\n%s\n", n1, n2, h1, h2, h3);
    snprintf(path, sizeof path, "%s/good.jsonl", r.dir);
    snprintf(nats1, sizeof nats1, "%s/nats1.jsonl", r.dir);
    snprintf(nats2, sizeof nats2, "%s/nats2.jsonl", r.dir);
    snprintf(line, sizeof line, "%s\n", n1);
    int written = write_file(path, good) == 0 && write_file(nats1, line) == 0;
    snprintf(line, sizeof line, "%s\n", n2);
    if (!written || write_file(nats2, line) != 0) {
        VT_FAILF("[e] cannot write the event files in %s", r.dir);
        goto out;
    }
    char out[700], log[700];
    snprintf(out, sizeof out, "%s/replay.jsonl", r.dir);
    snprintf(log, sizeof log, "%s/replay.log", r.dir);
    const char *argv[] = { VIGIL_BIN, "replay", "--rules", RULES, "--input", path, "--time-field", TIME_FIELD,
                           "--id-field", ID_FIELD, "--output", out, NULL };
    int rc = vt_run(argv, log, RUN_TIMEOUT_MS);
    if (rc != 0 || vt_load_alerts(out, "n", &want_nats, &shadow) != 0 || vt_load_alerts(out, NULL, &want_all, &shadow) != 0 ||
        want_nats.n != 2 || want_all.n != 5) {
        VT_FAILF("[e] replay of the good events: exit %d, %zu alerts from NATS events and %zu in all (expected 2 and 5)",
              rc, want_nats.n, want_all.n);
        vt_dump_log(log, LOG_TAIL);
        goto out;
    }

    /* NATS: a good event, three bad messages, a good event. */
    printf("  [e] JetStream: n1, malformed JSON, no key, no time, n2 on vigil.events.tx\n");
    char nokey[256], notime[256];
    snprintf(nokey, sizeof nokey, "{\"type\":\"tx\",\"transaction_id\":\"x-nokey\","
                                  "\"tx_datetime\":\"2018-05-01T00:02:00Z\",\"tx_amount\":900}");
    snprintf(notime, sizeof notime, "{\"type\":\"tx\",\"transaction_id\":\"x-notime\",\"customer_id\":910090,"
                                    "\"terminal_id\":910090,\"tx_amount\":900}");
    if (rig_feed(&r, nats1, 1) != 0)
        goto out;
    if (js_raw(r.nats_url, "vigil.events.tx", "{\"type\":\"tx\",\"transaction_id\":\"x-broken\",\"customer_") != 0 ||
        js_raw(r.nats_url, "vigil.events.tx", nokey) != 0 || js_raw(r.nats_url, "vigil.events.tx", notime) != 0) {
        VT_FAILF("[e] could not publish the bad messages to JetStream");
        goto out;
    }
    if (rig_feed(&r, nats2, 5) != 0)
        goto out;
    printf("  [e] run 1: vigil serve (memory store) must skip the bad messages and alert on n1 and n2\n");
    if (serve_start(&r) != 0 || serve_wait_ready(&r) != 0 || wait_delivered(&r, &want_nats, 60000) != 0)
        goto out;
    counters c1, c2;
    if (read_counters(&r, &c1) != 0) {
        VT_FAILF("[e] GET /metrics has no vigil_events_rejected_total{reason=\"malformed\"} / {reason=\"no_key\"}");
        goto out;
    }
    printf("  [e] rejected after NATS: malformed %.0f, no_key %.0f\n", c1.malformed, c1.no_key);
    if (!(c1.malformed >= 1 && c1.no_key >= 1 && c1.malformed + c1.no_key >= 3))
        VT_FAILF("[e] the three bad NATS messages were not all counted: malformed %.0f (>= 1), no_key %.0f (>= 1), "
              "sum >= 3", c1.malformed, c1.no_key);

    /* HTTP. */
    printf("  [e] HTTP: h1; an oversized body; NDJSON with a bad line 2; no key; no time; h2+h3\n");
    long st = post(&r, h1, strlen(h1), "application/json", &ans);
    if (st != 202)
        VT_FAILF("[e] POST h1: %ld %s, expected 202", st, ans ? ans : "(no answer)");
    free(ans);
    ans = NULL;

    size_t big_len = (17u << 20);   /* over the default 16 MiB body limit */
    if (!(big = malloc(big_len + 1))) {
        VT_FAILF("[e] out of memory for the oversized body");
        goto out;
    }
    char x[256];
    tx_json(x, sizeof x, "x-big", 910091, 11);
    size_t xl = strlen(x) - 1;   /* without the closing brace */
    memcpy(big, x, xl);
    memcpy(big + xl, ",\"pad\":\"", 8);
    memset(big + xl + 8, 'p', big_len - xl - 10);
    memcpy(big + big_len - 2, "\"}", 2);
    big[big_len] = '\0';
    st = post(&r, big, big_len, "application/json", &ans);
    printf("  [e] oversized POST (%zu bytes): %ld %.200s\n", big_len, st, ans ? ans : "(no answer)");
    if (st != 413)
        VT_FAILF("[e] oversized POST /v1/events: %ld, expected 413", st);
    free(ans);
    ans = NULL;

    char batch[1024], b1[256], b3[256];
    tx_json(b1, sizeof b1, "x-b1", 910092, 12);
    tx_json(b3, sizeof b3, "x-b3", 910093, 13);
    snprintf(batch, sizeof batch, "%s\n{\"type\":\"tx\",\"transaction_id\":\"x-b2\",\n%s\n", b1, b3);
    st = post(&r, batch, strlen(batch), "application/x-ndjson", &ans);
    printf("  [e] NDJSON with a bad line 2: %ld %.300s\n", st, ans ? ans : "(no answer)");
    cJSON *o = ans ? cJSON_Parse(ans) : NULL;
    const cJSON *ln = cJSON_GetObjectItemCaseSensitive(o, "line");
    if (st != 400 || !cJSON_IsNumber(ln) || ln->valueint != 2)
        VT_FAILF("[e] NDJSON batch with a bad line 2: %ld, expected 400 with \"line\":2", st);
    cJSON_Delete(o);
    free(ans);
    ans = NULL;

    st = post(&r, nokey, strlen(nokey), "application/json", &ans);
    printf("  [e] no key: %ld %.200s\n", st, ans ? ans : "(no answer)");
    if (st != 400 && st != 202)
        VT_FAILF("[e] an event with no key: %ld, expected 400 (refused) or 202 (counted as no_key)", st);
    free(ans);
    ans = NULL;
    st = post(&r, notime, strlen(notime), "application/json", &ans);
    printf("  [e] no time: %ld %.200s\n", st, ans ? ans : "(no answer)");
    if (st != 400 || !ans || !strstr(ans, TIME_FIELD))
        VT_FAILF("[e] an event with no time: %ld, expected 400 naming %s", st, TIME_FIELD);
    free(ans);
    ans = NULL;

    snprintf(batch, sizeof batch, "%s\n%s\n", h2, h3);
    st = post(&r, batch, strlen(batch), "application/x-ndjson", &ans);
    if (st != 202)
        VT_FAILF("[e] POST h2+h3: %ld %s, expected 202", st, ans ? ans : "(no answer)");
    free(ans);
    ans = NULL;

    if (wait_delivered(&r, &want_all, 60000) != 0) {
        vt_check_deliveries(r.name, r.rcv_out, r.kills, &want_all, &none);
        goto out;
    }
    if (read_counters(&r, &c2) == 0) {
        printf("  [e] rejected after HTTP: malformed %.0f, no_key %.0f\n", c2.malformed, c2.no_key);
        if (c2.malformed + c2.no_key <= c1.malformed + c1.no_key)
            VT_FAILF("[e] the refused HTTP events were not counted in vigil_events_rejected_total");
    }
    finish(&r, &want_all, &none);   /* also: no x-* event alerted */
out:
    free(ans);
    free(big);
    vt_set_free(&want_nats);
    vt_set_free(&want_all);
    vt_set_free(&shadow);
    rig_down(&r);
    printf("  [e] %.1f s\n", (double)(vt_now_ms() - t0) / 1000.0);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int have = vt_require_data(TX_DATA);
    if (have == 0) {
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    if (have < 0)
        return 1;

    const char *s = getenv("VIGIL_CRASH_SEED");
    char *end = NULL;
    seed = s && *s ? strtoull(s, &end, 10) : 0;
    if (!s || !*s || *end)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    printf("crash test: seed %llu (VIGIL_CRASH_SEED=%llu repeats this schedule)\n", (unsigned long long)seed,
           (unsigned long long)seed);

    /* The children inherit the environment: the webhook secret, loopback
     * without proxies, none of the developer's VIGIL_* settings. */
    setenv("VIGIL_WEBHOOK_SECRET", SECRET, 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    static const char *const drop[] = { "VIGIL_NATS", "VIGIL_REDIS", "VIGIL_RULES", "VIGIL_LISTEN", "VIGIL_FAULT",
                                        "VIGIL_CONFIG", "VIGIL_DATA_DIR", NULL };
    for (int i = 0; drop[i]; i++)
        unsetenv(drop[i]);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    dir = vt_tmpdir();
    if (!dir)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    static const struct {
        char letter;
        const char *name;
        CU_TestFunc fn;
    } cases[] = {
        { 'a', "a. Redis store: kill -9 at fetch, feed, commit, ack, deliver and at random", test_crash_redis },
        { 'b', "b. memory store: the same", test_crash_memory },
        { 'c', "c. Redis restarted mid-run (AOF): nothing lost", test_redis_restart },
        { 'd', "d. nats-server restarted mid-run: intake resumes, nothing lost", test_nats_restart },
        { 'e', "e. bad input on NATS and HTTP: refused or counted, the good events alert", test_bad_input },
    };
    const char *only = getenv("VIGIL_CRASH_CASES");
    CU_pSuite suite = CU_add_suite("crash", NULL, NULL);
    int ok = suite && CU_add_test(suite, "slice of the card data, replay reference", test_reference);
    for (size_t i = 0; ok && i < sizeof cases / sizeof cases[0]; i++)
        if (!only || !*only || strchr(only, cases[i].letter))
            ok = CU_add_test(suite, cases[i].name, cases[i].fn) != NULL;
    if (!ok) {
        CU_cleanup_registry();
        return 1;
    }
    long long t0 = vt_now_ms();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures(), records = CU_get_number_of_failure_records();
    printf("\ntest_crash: %.1f s (seed %llu)\n", (double)(vt_now_ms() - t0) / 1000.0, (unsigned long long)seed);
    CU_cleanup_registry();
    vt_set_free(&ref_active);
    vt_set_free(&ref_shadow);
    free(dir);
    nats_Close();
    return fails != 0 || records != 0;
}
