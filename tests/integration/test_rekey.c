/* test_rekey.c — issue 14, the rekey stage of cluster mode (server/ingest/
 * rekey.c), against a real nats-server -js and the real `vigil serve`
 * started with cluster.instance set (VIGIL_CLUSTER_INSTANCE), partitions 8
 * and the rules of rules/fraud (two key groups: customer_id, terminal_id).
 * The keyed stream VIGIL_KEYED is read with plain nats.c (js_GetMsg of every
 * sequence), and each copy's partition is computed here with vigil_hash:
 *
 *  1. start: the keyed stream and the shared consumer vigil-rekey exist, the
 *     single-process consumer "vigil" does not;
 *  2. a raw NDJSON batch on vigil.events.x: each event once per group it has
 *     a key of, on vigil.keyed.<group>.<p>, with Nats-Msg-Id "<id>:<group>"
 *     ("<raw seq>:<line>:<group>" without id, "h<sha256(id)>:<group>" for an
 *     id with a space), its body the line as sent; an event lacking a
 *     group's key has no copy for it; a bad line and a line with no key are
 *     counted (vigil_events_rejected_total) and logged, not published; the
 *     raw consumer's ack floor never passes a message whose copies are not
 *     all in the keyed stream (sampled every few ms while it moves);
 *  3. the same batch again under another raw Msg-Id: no new copy but the
 *     id-less event's (its id names the raw sequence);
 *  4. the keyed stream refusing (MaxMsgs reached, DiscardNew): the raw
 *     message is handed back (Nak) and not acked; once the stream takes
 *     messages again it is redelivered and its copies are stored once each
 *     (the one stored before the failure is dropped as a duplicate);
 *  5. POST /v1/events in cluster mode: 202 only once every copy is stored
 *     (read right after the answer), POST ids "<sha256(body)>:<line>:<g>";
 *     ?wait answers 400; a bad line 400 with no copy;
 *  6. a second instance (vigil-b): one of the two re-keys (the owner of the
 *     first pair): 40 raw messages rekeyed, each copy stored once; a keyed stream of
 *     that name with other subjects: a server refuses to start, saying why;
 *  7. nats-server stopped: POST answers 503 with Retry-After; restarted on
 *     its store: POST answers 202 again, and raw messages are rekeyed again.
 * About 3 s. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"
#include "vigil/ruleset.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define RULES VIGIL_SOURCE_DIR "/rules/fraud"
#define P 8
#define KEYED "VIGIL_KEYED"
#define RAW "VIGIL_EVENTS"
#define REKEY "vigil-rekey"   /* the re-keyer's consumer: REKEY "-e<epoch>" (one per re-keyer) */

/* The name of the re-keyer's consumer now (the one of the family REKEY), in buf; 0 when none. */
static int rekey_consumer(jsCtx *j, char *buf, size_t n) {
    jsConsumerNamesList *l = NULL;
    jsErrCode jerr = 0;
    int found = 0;
    if (js_ConsumerNames(&l, j, RAW, NULL, &jerr) == NATS_OK)
        for (int i = 0; i < l->Count && !found; i++)
            if (strncmp(l->List[i], REKEY "-e", strlen(REKEY "-e")) == 0) {
                snprintf(buf, n, "%s", l->List[i]);
                found = 1;
            }
    jsConsumerNamesList_Destroy(l);
    return found;
}
#define WAIT_MS 10000

static char *dir;
static int nport;
static char nurl[64], rurl[64], base[128], logpath[600];
static vt_proc *redis;
static vt_proc *nats, *vigil;
static natsConnection *nc;
static jsCtx *js;

/* ---- reading the keyed stream ----------------------------------------------------- */

typedef struct copy {
    char subject[128], id[160];
    char *body;
} copy;

static copy *copies;
static size_t ncopies;

static void copies_free(void) {
    for (size_t i = 0; i < ncopies; i++) free(copies[i].body);
    free(copies);
    copies = NULL;
    ncopies = 0;
}

static uint64_t stream_msgs(const char *stream) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, stream, NULL, &jerr) != NATS_OK) return 0;
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

/* Every message of the keyed stream into copies[]. */
static void read_keyed(void) {
    copies_free();
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, KEYED, NULL, &jerr) != NATS_OK) return;
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    copies = calloc(last + 1, sizeof *copies);
    for (uint64_t s = first; s >= 1 && s <= last; s++) {
        natsMsg *m = NULL;
        if (js_GetMsg(&m, js, KEYED, s, NULL, &jerr) != NATS_OK) continue;
        copy *c = &copies[ncopies++];
        snprintf(c->subject, sizeof c->subject, "%s", natsMsg_GetSubject(m));
        const char *id = NULL;
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) == NATS_OK && id) snprintf(c->id, sizeof c->id, "%s", id);
        c->body = strndup(natsMsg_GetData(m) ? natsMsg_GetData(m) : "", (size_t)natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
    }
}

/* How many copies have this Msg-Id; *c gets the last one. */
static int count_id(const char *id, copy **c) {
    int n = 0;
    for (size_t i = 0; i < ncopies; i++)
        if (strcmp(copies[i].id, id) == 0) {
            n++;
            if (c) *c = &copies[i];
        }
    return n;
}

/* The copy of (msg id, group, key) must be there exactly once, on the
 * subject of its partition, with body `body`. */
static void expect_copy(const char *id, const char *group, const char *key, const char *body) {
    char mid[200], subj[160];
    snprintf(mid, sizeof mid, "%s:%s", id, group);
    snprintf(subj, sizeof subj, "vigil.keyed.%s.%u", group, (unsigned)(vigil_hash(key, strlen(key)) % P));
    copy *c = NULL;
    int n = count_id(mid, &c);
    if (n != 1) printf("  copy %s: %d times (expected once)\n", mid, n);
    CU_ASSERT_EQUAL(n, 1);
    if (!c) return;
    if (strcmp(c->subject, subj) != 0) printf("  copy %s on %s, expected %s\n", mid, c->subject, subj);
    CU_ASSERT_STRING_EQUAL(c->subject, subj);
    CU_ASSERT_STRING_EQUAL(c->body, body);
}

static void expect_no_copy(const char *id, const char *group) {
    char mid[200];
    snprintf(mid, sizeof mid, "%s:%s", id, group);
    int n = count_id(mid, NULL);
    if (n) printf("  unexpected copy %s\n", mid);
    CU_ASSERT_EQUAL(n, 0);
}

/* ---- the raw consumer, metrics, HTTP ------------------------------------------------ */

static uint64_t ack_floor(void) {
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    char name[256];
    if (!rekey_consumer(js, name, sizeof name) || js_GetConsumerInfo(&ci, js, RAW, name, NULL, &jerr) != NATS_OK)
        return 0;
    uint64_t f = ci->AckFloor.Stream;   /* a consumer made at sequence N reports 0 until it acks */
    if (ci->Config && ci->Config->DeliverPolicy == js_DeliverByStartSequence && ci->Config->OptStartSeq > f + 1)
        f = ci->Config->OptStartSeq - 1;
    jsConsumerInfo_Destroy(ci);
    return f;
}

/* Wait until the ack floor reaches seq, checking at every sample that the
 * keyed stream already holds `need` copies once the floor is there (the
 * floor is read first: a copy stored later than that read would show). */
static int wait_floor(uint64_t seq, uint64_t need) {
    int violations = 0;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < WAIT_MS; vt_sleep_ms(3)) {
        uint64_t f = ack_floor();
        uint64_t n = stream_msgs(KEYED);
        if (f >= seq && n < need) {
            printf("  ack floor %llu while the keyed stream holds %llu of %llu copies\n", (unsigned long long)f,
                   (unsigned long long)n, (unsigned long long)need);
            violations++;
        }
        if (f >= seq) return violations ? -1 : 0;
    }
    printf("  the ack floor did not reach %llu (it is %llu)\n", (unsigned long long)seq,
           (unsigned long long)ack_floor());
    return -1;
}

static double metric(const char *series) { return vt_metric(base, series); }

typedef struct answer {
    long status;
    char retry_after[32];
    char body[2048];
    size_t len;
} answer;

static size_t on_header(char *b, size_t sz, size_t n, void *ud) {
    answer *a = ud;
    size_t len = sz * n;
    if (len > 12 && strncasecmp(b, "Retry-After:", 12) == 0) {
        const char *v = b + 12;
        while (*v == ' ') v++;
        size_t l = strcspn(v, "\r\n");
        snprintf(a->retry_after, sizeof a->retry_after, "%.*s", (int)l, v);
    }
    return len;
}

static size_t on_body(char *b, size_t sz, size_t n, void *ud) {
    answer *a = ud;
    size_t len = sz * n, room = sizeof a->body - 1 - a->len;
    memcpy(a->body + a->len, b, len < room ? len : room);
    a->len += len < room ? len : room;
    a->body[a->len] = '\0';
    return len;
}

/* POST body to path with a content type; the status, Retry-After and body. */
static answer post(const char *path, const char *body, const char *ct) {
    answer a;
    memset(&a, 0, sizeof a);
    char url[256], h[128];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(h, sizeof h, "Content-Type: %s", ct);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = curl_slist_append(NULL, h);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return a;
}

static uint64_t publish_raw(const char *subject, const char *body, const char *msgid) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msgid;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_Publish(&pa, js, subject, body, (int)strlen(body), &po, &jerr);
    CU_ASSERT_EQUAL(ns, NATS_OK);
    uint64_t seq = pa ? pa->Sequence : 0;
    jsPubAck_Destroy(pa);
    return seq;
}

static void sha_hex(const char *s, size_t len, char out[65]) {
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s, len, h);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int log_has(const char *path, const char *needle) {
    char *t = vt_slurp(path);
    int r = t && strstr(t, needle);
    free(t);
    return r;
}

/* ---- the server ------------------------------------------------------------------- */

static vt_proc *start_vigil(const char *log) {
    const char *argv[] = {VIGIL_BIN, "serve", "--rules", RULES, "--listen", "127.0.0.1:0", "--nats", nurl,
                          "--jetstream", "--redis", rurl, "--partitions", "8", "--workers", "1", "--idle-timeout",
                          "0", "--data-dir", "", NULL};
    vt_proc *p = vt_start_vigil(argv, log, base, sizeof base, 20000);
    /* the re-keyer is the owner of the first pair: wait until this instance (the
     * first, alone) took it and bound the raw consumer */
    for (long long t0 = vt_now_ms(); p && vt_now_ms() - t0 < 10000; vt_sleep_ms(50)) {
        char *text = vt_slurp(log);
        int up = text && strstr(text, "starts re-keying");
        free(text);
        if (up || strstr(log, "vigil-b")) break;
    }
    return p;
}

/* 1 when 127.0.0.1:port can be bound now. */
static int port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* nats-server on a free port below the ephemeral range (32768+): the test
 * restarts it on the same port, which an outgoing connection's ephemeral
 * port could otherwise have taken meanwhile. */
static vt_proc *start_nats_low(void) {
    srand((unsigned)getpid() ^ (unsigned)vt_now_ms());
    for (int i = 0; i < 20; i++) {
        nport = 20000 + rand() % 12000;
        if (!port_free(nport)) continue;
        vt_proc *p = vt_start_nats(&nport, dir);
        if (p) return p;
    }
    return NULL;
}

static int setup(void) {
    if (!(dir = vt_tmpdir())) return -1;
    if (!(nats = start_nats_low())) return -1;
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nport);
    if (natsConnection_ConnectTo(&nc, nurl) != NATS_OK || natsConnection_JetStream(&js, nc, NULL) != NATS_OK)
        return -1;
    int rport = 0;   /* cluster mode keeps the pairs' state, offsets and epochs in Redis */
    if (!(redis = vt_start_redis(&rport, dir))) return -1;
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d", rport);
    setenv("VIGIL_CLUSTER_INSTANCE", "vigil-a", 1);   /* cluster mode, inherited by vigil serve */
    snprintf(logpath, sizeof logpath, "%s/vigil.log", dir);
    if (!(vigil = start_vigil(logpath))) return -1;
    return 0;
}

static int teardown(void) {
    copies_free();
    if (vigil) vt_kill(vigil, SIGTERM);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (nats) vt_kill(nats, SIGTERM);
    if (redis) vt_kill(redis, SIGTERM);
    free(dir);
    return 0;
}

/* ---- the tests ---------------------------------------------------------------------- */

static void test_start(void) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    CU_ASSERT_EQUAL_FATAL(js_GetStreamInfo(&si, js, KEYED, NULL, &jerr), NATS_OK);
    CU_ASSERT_EQUAL(si->Config->SubjectsLen, 1);
    if (si->Config->SubjectsLen == 1) CU_ASSERT_STRING_EQUAL(si->Config->Subjects[0], "vigil.keyed.>");
    CU_ASSERT_EQUAL(si->Config->Retention, js_LimitsPolicy);
    CU_ASSERT_EQUAL(si->Config->Storage, js_FileStorage);
    CU_ASSERT_EQUAL(si->Config->Duplicates, 120LL * 1000000000LL);
    jsStreamInfo_Destroy(si);
    jsConsumerInfo *ci = NULL;
    char name[256] = "";
    CU_ASSERT_FATAL(rekey_consumer(js, name, sizeof name));   /* created by the re-keyer, with its epoch */
    CU_ASSERT_EQUAL(js_GetConsumerInfo(&ci, js, RAW, name, NULL, &jerr), NATS_OK);
    if (ci) {
        CU_ASSERT_EQUAL(ci->Config->AckPolicy, js_AckExplicit);
        CU_ASSERT(ci->Config->MaxAckPending > 0 && ci->Config->MaxAckPending <= 10000);
        CU_ASSERT_EQUAL(ci->Config->AckWait, 30LL * 1000000000LL);
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
    }
    /* the single-process durable consumer must not run in cluster mode */
    CU_ASSERT_EQUAL(js_GetConsumerInfo(&ci, js, RAW, "vigil", NULL, &jerr), NATS_NOT_FOUND);
    jsConsumerInfo_Destroy(ci);
}

static const char *const A[] = {
    "{\"id\":\"a1\",\"ts\":1700000000000,\"type\":\"tx\",\"customer_id\":101,\"terminal_id\":\"t1\",\"tx_amount\":5}",
    "{\"id\":\"a2\",\"ts\":1700000001000,\"type\":\"tx\",\"customer_id\":102,\"tx_amount\":7}",
    "{\"id\":\"a3\",\"ts\":1700000002000,\"type\":\"report\",\"terminal_id\":\"t2\"}",
    "{\"id\":\"bad1\",\"ts\":170000000",                         /* line 4: not JSON */
    "",                                                          /* line 5: blank */
    "{\"ts\":1700000003000,\"type\":\"tx\",\"customer_id\":103,\"terminal_id\":\"t3\"}",   /* line 6: no id */
    "{\"id\":\"with space\",\"ts\":1700000004000,\"type\":\"tx\",\"customer_id\":104}",
    "{\"id\":\"nokey\",\"ts\":1700000005000,\"type\":\"tx\"}",   /* line 8: neither key */
    NULL};
#define A_COPIES 7   /* a1 ×2, a2, a3, line 6 ×2, "with space" */

static char batch_a[2048];
static uint64_t seq_a;

static void test_raw_batch(void) {
    size_t len = 0;
    for (int i = 0; A[i]; i++) len += (size_t)snprintf(batch_a + len, sizeof batch_a - len, "%s\n", A[i]);
    double bad0 = metric("vigil_events_rejected_total{reason=\"malformed\"}");
    double nokey0 = metric("vigil_events_rejected_total{reason=\"no_key\"}");
    seq_a = publish_raw("vigil.events.x", batch_a, "raw-A");
    CU_ASSERT_EQUAL(wait_floor(seq_a, A_COPIES), 0);
    read_keyed();
    CU_ASSERT_EQUAL(ncopies, A_COPIES);
    expect_copy("a1", "customer_id", "101", A[0]);
    expect_copy("a1", "terminal_id", "t1", A[0]);
    expect_copy("a2", "customer_id", "102", A[1]);
    expect_no_copy("a2", "terminal_id");   /* no terminal_id: no copy for that group */
    expect_copy("a3", "terminal_id", "t2", A[2]);
    expect_no_copy("a3", "customer_id");
    char id[96];
    snprintf(id, sizeof id, "%llu:6", (unsigned long long)seq_a);   /* no id: <raw seq>:<line> */
    expect_copy(id, "customer_id", "103", A[5]);
    expect_copy(id, "terminal_id", "t3", A[5]);
    char h[65];
    sha_hex("with space", 10, h);   /* not a header-safe id: h + its SHA-256 */
    snprintf(id, sizeof id, "h%s", h);
    expect_copy(id, "customer_id", "104", A[6]);
    expect_no_copy("bad1", "customer_id");
    expect_no_copy("nokey", "customer_id");
    expect_no_copy("nokey", "terminal_id");
    /* counted and logged as on the single-process path, the message acked */
    CU_ASSERT_EQUAL(metric("vigil_events_rejected_total{reason=\"malformed\"}"), bad0 + 1);
    CU_ASSERT_EQUAL(metric("vigil_events_rejected_total{reason=\"no_key\"}"), nokey0 + 1);
    char needle[128];
    snprintf(needle, sizeof needle, "vigil.events.x seq %llu line 4 rejected", (unsigned long long)seq_a);
    CU_ASSERT(log_has(logpath, needle));
    CU_ASSERT(metric("vigil_rekey_messages_total{outcome=\"acked\"}") >= 1);
    CU_ASSERT_EQUAL(metric("vigil_rekey_copies_total{outcome=\"stored\"}"), A_COPIES);
}

/* The same batch again (a redelivery as another raw message): the copies of
 * events with ids are duplicates; only the id-less event's are new. */
static void test_redelivery_dedup(void) {
    uint64_t seq = publish_raw("vigil.events.x", batch_a, "raw-A-again");
    CU_ASSERT_FATAL(seq == seq_a + 1);
    CU_ASSERT_EQUAL(wait_floor(seq, A_COPIES + 2), 0);
    read_keyed();
    CU_ASSERT_EQUAL(ncopies, A_COPIES + 2);
    expect_copy("a1", "customer_id", "101", A[0]);
    expect_copy("a1", "terminal_id", "t1", A[0]);
    expect_copy("a2", "customer_id", "102", A[1]);
    char id[96];
    snprintf(id, sizeof id, "%llu:6", (unsigned long long)seq);
    expect_copy(id, "customer_id", "103", A[5]);
    expect_copy(id, "terminal_id", "t3", A[5]);
}

static int set_max_msgs(int64_t max, jsDiscardPolicy discard) {
    jsStreamInfo *si = NULL, *si2 = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, KEYED, NULL, &jerr) != NATS_OK) return -1;
    si->Config->MaxMsgs = max;
    si->Config->Discard = discard;
    natsStatus ns = js_UpdateStream(&si2, js, si->Config, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    jsStreamInfo_Destroy(si2);
    return ns == NATS_OK ? 0 : -1;
}

/* The keyed stream refuses: nothing acked; then it takes them: the message
 * comes back, each copy stored once. */
static void test_failure_nak(void) {
    uint64_t before = stream_msgs(KEYED), floor0 = ack_floor();
    double naks0 = metric("vigil_rekey_messages_total{outcome=\"handed_back\"}");
    CU_ASSERT_FATAL(set_max_msgs((int64_t)before + 1, js_DiscardNew) == 0);
    const char *c1 = "{\"id\":\"c1\",\"ts\":1700000010000,\"type\":\"tx\",\"customer_id\":301,\"terminal_id\":\"t31\"}";
    const char *c2 = "{\"id\":\"c2\",\"ts\":1700000011000,\"type\":\"tx\",\"customer_id\":302,\"terminal_id\":\"t32\"}";
    char body[512];
    snprintf(body, sizeof body, "%s\n%s\n", c1, c2);
    uint64_t seq = publish_raw("vigil.events.y", body, "raw-C");
    double naks = naks0;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < WAIT_MS && naks <= naks0; vt_sleep_ms(20))
        naks = metric("vigil_rekey_messages_total{outcome=\"handed_back\"}");
    CU_ASSERT(naks > naks0);
    CU_ASSERT(metric("vigil_rekey_copies_total{outcome=\"failed\"}") >= 1);
    CU_ASSERT(ack_floor() < seq);   /* not acked: its copies are not all stored */
    CU_ASSERT_EQUAL(ack_floor(), floor0);
    CU_ASSERT_EQUAL(stream_msgs(KEYED), before + 1);   /* one copy got in before the limit */
    CU_ASSERT(log_has(logpath, "handed back for redelivery"));
    CU_ASSERT_FATAL(set_max_msgs(-1, js_DiscardOld) == 0);
    CU_ASSERT_EQUAL(wait_floor(seq, before + 4), 0);
    read_keyed();
    CU_ASSERT_EQUAL(ncopies, before + 4);
    expect_copy("c1", "customer_id", "301", c1);
    expect_copy("c1", "terminal_id", "t31", c1);
    expect_copy("c2", "customer_id", "302", c2);
    expect_copy("c2", "terminal_id", "t32", c2);
}

static void test_post(void) {
    const char *p1 = "{\"id\":\"p1\",\"ts\":1700000020000,\"type\":\"tx\",\"customer_id\":201,\"terminal_id\":\"t9\"}";
    const char *p2 = "{\"ts\":1700000021000,\"type\":\"tx\",\"customer_id\":202}";
    char body[512];
    snprintf(body, sizeof body, "%s\n%s\n", p1, p2);
    uint64_t before = stream_msgs(KEYED);
    answer a = post("/v1/events", body, "application/x-ndjson");
    CU_ASSERT_EQUAL(a.status, 202);
    CU_ASSERT(strstr(a.body, "\"accepted\":2") != NULL);
    /* 202 means stored: read at once, no waiting */
    read_keyed();
    CU_ASSERT_EQUAL(ncopies, before + 3);
    expect_copy("p1", "customer_id", "201", p1);
    expect_copy("p1", "terminal_id", "t9", p1);
    char h[65], id[96];
    sha_hex(body, strlen(body), h);
    snprintf(id, sizeof id, "%s:2", h);   /* POST without id: <sha256(body)>:<line> */
    expect_copy(id, "customer_id", "202", p2);
    /* the same POST retried: stored copies are duplicates */
    a = post("/v1/events", body, "application/x-ndjson");
    CU_ASSERT_EQUAL(a.status, 202);
    CU_ASSERT_EQUAL(stream_msgs(KEYED), before + 3);
    /* one pretty-printed JSON event: its copy is its text as sent */
    const char *pretty = "{\n  \"id\": \"p3\",\n  \"ts\": 1700000022000,\n  \"terminal_id\": \"t10\"\n}";
    a = post("/v1/events", pretty, "application/json");
    CU_ASSERT_EQUAL(a.status, 202);
    read_keyed();
    expect_copy("p3", "terminal_id", "t10", pretty);
    /* ?wait is not for cluster mode; a bad line refuses the whole batch */
    uint64_t n = stream_msgs(KEYED);
    a = post("/v1/events?wait=100", p1, "application/json");
    CU_ASSERT_EQUAL(a.status, 400);
    CU_ASSERT(strstr(a.body, "not available in cluster mode") != NULL);
    snprintf(body, sizeof body, "{\"id\":\"p4\",\"ts\":1700000023000,\"customer_id\":204}\nnot json\n");
    a = post("/v1/events", body, "application/x-ndjson");
    CU_ASSERT_EQUAL(a.status, 400);
    CU_ASSERT(strstr(a.body, "line 2") != NULL);
    CU_ASSERT_EQUAL(stream_msgs(KEYED), n);
}

static double metric_at(const char *at, const char *series) {
    char keep[128];
    memcpy(keep, base, sizeof base);
    snprintf(base, sizeof base, "%s", at);
    double v = metric(series);
    memcpy(base, keep, sizeof base);
    return v;
}

/* Two instances: one re-keys at a time (the owner of the first pair, so
 * that a pair's copies keep the raw stream's order), every raw message is
 * rekeyed, every copy stored once. */
static void test_two_instances(void) {
    char log2[700], base_a[128], base_b[128];
    snprintf(log2, sizeof log2, "%s/vigil-b.log", dir);
    memcpy(base_a, base, sizeof base);
    setenv("VIGIL_CLUSTER_INSTANCE", "vigil-b", 1);
    vt_proc *b = start_vigil(log2);
    setenv("VIGIL_CLUSTER_INSTANCE", "vigil-a", 1);
    memcpy(base_b, base, sizeof base);
    memcpy(base, base_a, sizeof base);
    CU_ASSERT_FATAL(b != NULL);
    const char *acked = "vigil_rekey_messages_total{outcome=\"acked\"}";
    double a0 = metric_at(base_a, acked);
    uint64_t before = stream_msgs(KEYED), last = 0;
    enum { MSGS = 40 };
    for (int i = 0; i < MSGS; i++) {
        char body[512], mid[32];
        snprintf(body, sizeof body,
                 "{\"id\":\"w%d\",\"ts\":1700000040000,\"customer_id\":%d,\"terminal_id\":\"t%d\"}\n"
                 "{\"id\":\"v%d\",\"ts\":1700000040001,\"customer_id\":%d}\n", i, 600 + i, i % 7, i, 700 + i);
        snprintf(mid, sizeof mid, "raw-W%d", i);
        last = publish_raw("vigil.events.w", body, mid);
    }
    CU_ASSERT_EQUAL(wait_floor(last, before + 3 * MSGS), 0);
    read_keyed();
    CU_ASSERT_EQUAL(ncopies, before + 3 * MSGS);
    for (int i = 0; i < MSGS; i++) {
        char id[16], k[16], t[16];
        snprintf(id, sizeof id, "w%d", i);
        snprintf(k, sizeof k, "%d", 600 + i);
        snprintf(t, sizeof t, "t%d", i % 7);
        char mid[64];
        snprintf(mid, sizeof mid, "%s:customer_id", id);
        CU_ASSERT_EQUAL(count_id(mid, NULL), 1);
        snprintf(mid, sizeof mid, "%s:terminal_id", id);
        CU_ASSERT_EQUAL(count_id(mid, NULL), 1);
        snprintf(mid, sizeof mid, "v%d:customer_id", i);
        CU_ASSERT_EQUAL(count_id(mid, NULL), 1);
    }
    double da = 0, db = 0;   /* counted just after the ack is sent: may trail the floor by a moment */
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 2000; vt_sleep_ms(20)) {
        da = metric_at(base_a, acked) - a0;
        db = metric_at(base_b, acked);
        if (da + db >= MSGS) break;
    }
    printf("  raw messages rekeyed: %.0f by vigil-a, %.0f by vigil-b\n", da, db);
    CU_ASSERT_EQUAL(da + db, MSGS);
    CU_ASSERT(da == 0 || db == 0);   /* one re-keyer */
    vt_kill(b, SIGTERM);
}

static void test_conflicting_stream(void) {
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"other.>"};
    sc.Name = "OTHER_KEYED";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    CU_ASSERT_FATAL(js_AddStream(&si, js, &sc, NULL, &jerr) == NATS_OK);
    jsStreamInfo_Destroy(si);
    char log2[700], base_keep[128];
    snprintf(log2, sizeof log2, "%s/vigil-other.log", dir);
    memcpy(base_keep, base, sizeof base);
    setenv("VIGIL_CLUSTER_STREAM", "OTHER_KEYED", 1);
    const char *argv[] = {VIGIL_BIN, "serve", "--rules", RULES, "--listen", "127.0.0.1:0", "--nats", nurl,
                          "--jetstream", "--redis", rurl, "--partitions", "8", "--workers", "1", "--data-dir", "", NULL};
    vt_proc *p = vt_spawn(argv, log2);
    unsetenv("VIGIL_CLUSTER_STREAM");
    CU_ASSERT_FATAL(p != NULL);
    int exited = vt_wait_exit(p, 15000);
    CU_ASSERT(exited);
    if (exited) CU_ASSERT(WIFEXITED(p->status) && WEXITSTATUS(p->status) != 0);
    CU_ASSERT(log_has(log2, "OTHER_KEYED exists with subjects ['other.>']"));
    if (!exited || !log_has(log2, "exists with subjects")) vt_dump_log(log2, 2000);
    vt_kill(p, SIGKILL);
    memcpy(base, base_keep, sizeof base);
}

static void test_nats_down(void) {
    vt_kill(nats, SIGKILL);
    nats = NULL;
    vt_sleep_ms(300);
    const char *ev = "{\"id\":\"d1\",\"ts\":1700000030000,\"customer_id\":401}";
    answer a = post("/v1/events", ev, "application/json");
    CU_ASSERT_EQUAL(a.status, 503);
    CU_ASSERT(a.retry_after[0] != '\0');
    if (a.status != 503) printf("  POST with NATS down: %ld %s\n", a.status, a.body);
    /* back on its store: POST is stored again */
    nats = vt_restart_nats(NULL, SIGKILL, nport, dir);
    CU_ASSERT_FATAL(nats != NULL);
    long st = 0;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 15000 && st != 202; vt_sleep_ms(200))
        st = post("/v1/events", ev, "application/json").status;
    CU_ASSERT_EQUAL(st, 202);
    /* and the rekey worker takes raw messages again */
    const char *r1 = "{\"id\":\"r1\",\"ts\":1700000031000,\"customer_id\":501}";
    uint64_t before = stream_msgs(KEYED);
    uint64_t seq = 0;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 10000 && !seq; vt_sleep_ms(200)) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = "raw-R";
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        if (js_Publish(&pa, js, "vigil.events.z", r1, (int)strlen(r1), &po, &jerr) == NATS_OK) seq = pa->Sequence;
        jsPubAck_Destroy(pa);
    }
    CU_ASSERT_FATAL(seq > 0);
    CU_ASSERT_EQUAL(wait_floor(seq, before + 1), 0);
    read_keyed();
    expect_copy("r1", "customer_id", "501", r1);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("rekey", setup, teardown);
    CU_add_test(s, "start: keyed stream, shared consumer, no single consumer", test_start);
    CU_add_test(s, "raw batch: one copy per group, ids, bad lines, ack after store", test_raw_batch);
    CU_add_test(s, "the same batch again: deduplicated", test_redelivery_dedup);
    CU_add_test(s, "keyed stream refusing: Nak, then redelivered once", test_failure_nak);
    CU_add_test(s, "POST in cluster mode", test_post);
    CU_add_test(s, "two instances: one re-keys, every copy once", test_two_instances);
    CU_add_test(s, "a keyed stream with other subjects: refused at start", test_conflicting_stream);
    CU_add_test(s, "NATS down: 503 with Retry-After, then 202", test_nats_down);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures() + (int)CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    curl_global_cleanup();
    return failures != 0;
}
