/* test_cluster_rules.c — rules and alerts across the instances of a cluster
 * (issue 14, helper h10; control.h "cluster mode", alerts/follow.h), with
 * two real `vigil serve` processes (cluster.instance vigil-a and vigil-b)
 * sharing a real nats-server (JetStream enabled on the server) and a real
 * redis-server, all on loopback ports below 32768 picked here. The servers
 * run with --jetstream (cluster mode needs it): an event posted to A is
 * re-keyed and matched by whichever instance owns its (key group,
 * partition) pair, and the other one must show the alert as well:
 *
 *  1. a PUT on A: within 3 s B's GET /v1/rules shows the new version active,
 *     and "instances" shows both at it; one audit entry (A's, by its token);
 *  2. an alert produced by the pair's owner P: on the other instance's
 *     GET /v1/alerts and SSE stream, with "instance": P and its
 *     rule_version; the same alert id published
 *     again by a third name is kept once; an alert NATS says B published is
 *     skipped by B (its own) and kept by A;
 *  3. B stopped (SIGSTOP) misses the notice of a change (nats-server drops a
 *     client that misses its pings: ping_interval 500 ms, ping_max 1) and
 *     after SIGCONT catches up by its periodic check (its log says so) within
 *     3 s;
 *  4. SIGHUP on A pushes its changed rules file as a change that B runs;
 *     a third instance starting with an older file in its own directory
 *     serves the shared catalog (the directory is not applied at start);
 *  5. two PUTs of one rule at once, on A and on B: each answers 200/201 or
 *     409 (the store's generation decides), and both instances end up
 *     running the same version and source;
 *  6. the cluster metrics (generation, syncs, notices, conflicts, the hub's
 *     remote alerts) count what happened.
 *
 * The whole file takes about 20 s. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef VIGIL_BINARY_DIR
#define VIGIL_BINARY_DIR "build"
#endif
#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define SPREAD_MS 3000   /* a change on one instance running on every one */

static char *dir;
static int redis_port, nats_port, nats_http_port;
static vt_proc *redis, *nats;

typedef struct server {
    vt_proc *p;
    int port;
    char base[64], log[512], name[16];
} server;
static server A, B;

/* ---- ports, servers ------------------------------------------------------------------- */

/* A loopback port below the ephemeral range (32768+) that nothing listens on now. */
static int low_port(void) {
    static unsigned seed;
    if (!seed) seed = (unsigned)getpid() * 2654435761u;
    for (int i = 0; i < 200; i++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) close(fd);
        if (ok) return port;
    }
    return -1;
}

static int start_nats(void) {
    char conf[600], path[512], log[512];
    nats_port = low_port();
    do nats_http_port = low_port();
    while (nats_http_port == nats_port);
    snprintf(path, sizeof path, "%s/nats.conf", dir);
    snprintf(log, sizeof log, "%s/nats.log", dir);
    /* a client that misses its pings (a stopped process) is dropped within about a second */
    snprintf(conf, sizeof conf,
             "listen: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\njetstream { store_dir: \"%s/js\" }\n"
             "ping_interval: \"500ms\"\nping_max: 1\n", nats_port, nats_http_port, dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(conf, f);
    fclose(f);
    const char *argv[] = {"nats-server", "-c", path, NULL};
    nats = vt_spawn(argv, log);
    if (!nats || vt_wait_port(nats_port, 10000) != 0) {
        vt_dump_log(log, 2000);
        return -1;
    }
    return 0;
}

/* The clients nats-server has now (its monitoring endpoint /connz), -1: unknown. */
static int nats_clients(void) {
    char url[96];
    long st = 0;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/connz", nats_http_port);
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    free(body);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, "num_connections");
    int v = cJSON_IsNumber(n) ? (int)n->valuedouble : -1;
    cJSON_Delete(o);
    return v;
}

static int start(server *s, const char *name) {
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->log, sizeof s->log, "%s/serve-%s.log", dir, name);
    char rules[512], listen[64], nurl[64], rurl[64];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    s->port = low_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->port);
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nats_port);
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d", redis_port);
    setenv("VIGIL_CLUSTER_INSTANCE", name, 1);   /* the child's; the flags have no cluster switch */
    /* versions reach the others through the members entries, one heartbeat apart */
    setenv("VIGIL_CLUSTER_LEASE", "3s", 1);
    setenv("VIGIL_CLUSTER_HEARTBEAT", "500ms", 1);
    const char *argv[] = {VIGIL_BIN, "serve", "--rules", rules, "--listen", listen, "--nats", nurl,
                          "--jetstream", "--redis", rurl, "--data-dir", "", "--workers", "1", "--partitions", "4",
                          "--idle-timeout", "0", NULL};
    s->p = vt_start_vigil(argv, s->log, s->base, sizeof s->base, 20000);
    unsetenv("VIGIL_CLUSTER_INSTANCE");
    return s->p ? 0 : -1;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static cJSON *get_json(const server *s, const char *path, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    char *body = vt_http("GET", url, NULL, 0, NULL, status);
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    free(body);
    return o;
}

static long put_rule(const server *s, const char *name, const char *src) {
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/rules/%s", s->base, name);
    free(vt_http("PUT", url, src, strlen(src), "text/x-lua", &st));
    return st;
}

/* The rule's running version on s, and its "instances" (a copy, or NULL). */
static int rule_version(const server *s, const char *name, cJSON **instances, char *state, size_t n) {
    long st = 0;
    cJSON *o = get_json(s, "/v1/rules", &st);
    int v = -1;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(o, "rules")) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(r, "name");
        if (!cJSON_IsString(nm) || strcmp(nm->valuestring, name) != 0) continue;
        v = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, "version"));
        const cJSON *stt = cJSON_GetObjectItemCaseSensitive(r, "state");
        if (state) snprintf(state, n, "%s", cJSON_IsString(stt) ? stt->valuestring : "");
        if (instances) *instances = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "instances"), 1);
    }
    cJSON_Delete(o);
    return v;
}

/* Both instances at version v in "instances" of s's answer. */
static int instances_at(const cJSON *inst, int v) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(inst, "vigil-a"), *b = cJSON_GetObjectItemCaseSensitive(inst, "vigil-b");
    return cJSON_IsNumber(a) && cJSON_IsNumber(b) && (int)a->valuedouble == v && (int)b->valuedouble == v;
}

/* How many alerts of s's GET /v1/alerts have this id; the first one's copy in *out. */
static int alerts_with_id(const server *s, const char *id, cJSON **out) {
    long st = 0;
    cJSON *o = get_json(s, "/v1/alerts?limit=1000", &st);
    int n = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "alerts")) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(x) || strcmp(x->valuestring, id) != 0) continue;
        if (!n && out) *out = cJSON_Duplicate(a, 1);
        n++;
    }
    cJSON_Delete(o);
    return n;
}

static int wait_alert(const server *s, const char *id, int timeout_ms, cJSON **out) {
    long long end = vt_now_ms() + timeout_ms;
    int n = 0;
    while ((n = alerts_with_id(s, id, out)) == 0 && vt_now_ms() < end) vt_sleep_ms(50);
    return n;
}

/* ---- SSE and NATS by hand --------------------------------------------------------------- */

static int tcp(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

static int sse_open(const server *s) {
    int fd = tcp(s->port);
    const char *req = "GET /v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    if (fd < 0 || write(fd, req, strlen(req)) != (ssize_t)strlen(req)) return -1;
    return fd;
}

/* Read the stream until `needle` shows up (1) or the deadline (0). */
static int sse_wait(int fd, const char *needle, int timeout_ms) {
    static char buf[1 << 16];
    size_t len = 0;
    long long end = vt_now_ms() + timeout_ms;
    while (vt_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        if (len >= sizeof buf - 1) len = 0;
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) return 0;
        len += (size_t)r;
        buf[len] = '\0';
        if (strstr(buf, needle)) return 1;
    }
    return 0;
}

/* One message on NATS with a Vigil-Instance header (HPUB, the NATS protocol). */
static int nats_hpub(const char *subject, const char *instance, const char *payload) {
    int fd = tcp(nats_port);
    if (fd < 0) return -1;
    char hdr[200], msg[8192];
    int hl = snprintf(hdr, sizeof hdr, "NATS/1.0\r\nVigil-Instance: %s\r\n\r\n", instance);
    int pl = (int)strlen(payload);
    int n = snprintf(msg, sizeof msg, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n"
                     "HPUB %s %d %d\r\n%s%s\r\nPING\r\n", subject, hl, hl + pl, hdr, payload);
    int ok = n > 0 && n < (int)sizeof msg && write(fd, msg, (size_t)n) == n;
    /* wait for PONG: the server has taken the message */
    char buf[4096];
    size_t got = 0;
    long long end = vt_now_ms() + 3000;
    while (ok && vt_now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        buf[got] = '\0';
        if (strstr(buf, "PONG")) break;
    }
    close(fd);
    return ok && strstr(buf, "PONG") ? 0 : -1;
}

/* ---- the tests ------------------------------------------------------------------------- */

static const char *V1 = "rule { name = \"big\", key = \"card\", where = { amount = gt(500) }, window = sliding(\"1m\"),\n"
                        "       when = ge(count(), 1) }\n";
static const char *V2 = "rule { name = \"big\", key = \"card\", where = { amount = gt(400) }, window = sliding(\"1m\"),\n"
                        "       when = ge(count(), 1), severity = \"high\" }\n";
static const char *V3 = "rule { name = \"big\", key = \"card\", where = { amount = gt(300) }, window = sliding(\"1m\"),\n"
                        "       when = ge(count(), 1), severity = \"low\" }\n";

static void test_change_spreads(void) {
    cJSON *inst = NULL;
    CU_ASSERT_EQUAL(rule_version(&B, "big", NULL, NULL, 0), 1);
    long long t0 = vt_now_ms();
    CU_ASSERT_EQUAL(put_rule(&A, "big", V2), 200);
    int v = -1, both = 0;
    char state[32] = "";
    while (vt_now_ms() - t0 < SPREAD_MS) {
        cJSON_Delete(inst);
        inst = NULL;
        v = rule_version(&B, "big", &inst, state, sizeof state);
        if (v == 2 && (both = instances_at(inst, 2))) break;
        vt_sleep_ms(50);
    }
    printf("  B runs version %d (%s) after %lld ms; instances %s\n", v, state, vt_now_ms() - t0,
           inst ? cJSON_PrintUnformatted(inst) : "none");
    CU_ASSERT_EQUAL(v, 2);
    CU_ASSERT_STRING_EQUAL(state, "active");
    CU_ASSERT(both);
    cJSON_Delete(inst);
    /* A's answer shows both too (B's versions reach A a moment after B runs them) */
    both = 0;
    while (!both && vt_now_ms() - t0 < SPREAD_MS) {
        inst = NULL;
        v = rule_version(&A, "big", &inst, NULL, 0);
        both = v == 2 && instances_at(inst, 2);
        cJSON_Delete(inst);
        if (!both) vt_sleep_ms(50);
    }
    CU_ASSERT(both);
    /* one audit entry for the change, A's */
    long st = 0;
    cJSON *au = get_json(&B, "/v1/audit", &st);
    int puts = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(au, "entries")) {
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(e, "action");
        puts += cJSON_IsString(act) && strcmp(act->valuestring, "put") == 0;
    }
    CU_ASSERT_EQUAL(puts, 1);
    cJSON_Delete(au);
}

/* The first alert on s's list (a copy in *out), 1; 0 when none within timeout_ms. */
static int wait_any_alert(const server *s, int timeout_ms, cJSON **out) {
    for (long long end = vt_now_ms() + timeout_ms; vt_now_ms() < end; vt_sleep_ms(50)) {
        long st = 0;
        cJSON *o = get_json(s, "/v1/alerts?limit=1000", &st);
        const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "alerts"), 0);
        if (a) *out = cJSON_Duplicate(a, 1);
        cJSON_Delete(o);
        if (a) return 1;
    }
    return 0;
}

static void test_alerts_everywhere(void) {
    int sse_a = sse_open(&A), sse_b = sse_open(&B);
    CU_ASSERT_FATAL(sse_a >= 0 && sse_b >= 0);
    CU_ASSERT(sse_wait(sse_a, "retry:", 3000));   /* the streams are open */
    CU_ASSERT(sse_wait(sse_b, "retry:", 3000));
    /* an event posted to A: re-keyed, matched by its pair's owner P (A or B) */
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/events", A.base);
    const char *ev = "{\"id\":\"e1\",\"ts\":1700000000000,\"card\":\"c1\",\"amount\":900}";
    char *body = vt_http("POST", url, ev, strlen(ev), "application/json", &st);
    free(body);
    CU_ASSERT_EQUAL(st, 202);
    cJSON *first = NULL;
    CU_ASSERT_FATAL(wait_any_alert(&A, 10000, &first) == 1);
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(first, "id");
    const cJSON *ij = cJSON_GetObjectItemCaseSensitive(first, "instance");
    CU_ASSERT_FATAL(cJSON_IsString(idj) && cJSON_IsString(ij));
    char id[40], producer[32];
    snprintf(id, sizeof id, "%s", idj->valuestring);
    snprintf(producer, sizeof producer, "%s", ij->valuestring);
    cJSON_Delete(first);
    CU_ASSERT(strcmp(producer, "vigil-a") == 0 || strcmp(producer, "vigil-b") == 0);
    const server *other = strcmp(producer, "vigil-a") == 0 ? &B : &A;
    printf("  the alert was produced by %s; checking it on %s\n", producer, other->name);
    /* on the other instance: the list and the stream, naming the producer */
    cJSON *onb = NULL;
    CU_ASSERT_EQUAL(wait_alert(other, id, 3000, &onb), 1);
    const cJSON *bi = cJSON_GetObjectItemCaseSensitive(onb, "instance"), *bv = cJSON_GetObjectItemCaseSensitive(onb, "rule_version");
    CU_ASSERT(cJSON_IsString(bi) && strcmp(bi->valuestring, producer) == 0);
    CU_ASSERT(cJSON_IsNumber(bv) && (int)bv->valuedouble == 2);
    CU_ASSERT(sse_wait(other == &B ? sse_b : sse_a, id, 3000));
    CU_ASSERT(sse_wait(other == &B ? sse_a : sse_b, id, 3000));
    close(sse_a);
    close(sse_b);
    /* the same alert again, from a third instance: kept once, on A and on B */
    char *text = onb ? cJSON_PrintUnformatted(onb) : NULL;
    cJSON_Delete(onb);
    CU_ASSERT_FATAL(text != NULL);
    CU_ASSERT_EQUAL(nats_hpub("vigil.alerts.big", "vigil-x", text), 0);
    /* and a new alert that B "published": B skips it (its own), A keeps it */
    char *own = strdup(text);
    memcpy(strstr(own, id), "0123456789abcdef0123456789abcdef", 32);
    CU_ASSERT_EQUAL(nats_hpub("vigil.alerts.big", "vigil-b", own), 0);
    CU_ASSERT_EQUAL(wait_alert(&A, "0123456789abcdef0123456789abcdef", 3000, NULL), 1);
    vt_sleep_ms(300);   /* the first message went before the second: both are handled by now */
    CU_ASSERT_EQUAL(alerts_with_id(&B, "0123456789abcdef0123456789abcdef", NULL), 0);
    CU_ASSERT_EQUAL(alerts_with_id(&A, id, NULL), 1);
    CU_ASSERT_EQUAL(alerts_with_id(&B, id, NULL), 1);
    free(text);
    free(own);
}

static void test_stopped_catches_up(void) {
    char *log0 = vt_slurp(B.log);
    size_t off = log0 ? strlen(log0) : 0;
    free(log0);
    int before = nats_clients();
    CU_ASSERT_FATAL(kill(B.p->pid, SIGSTOP) == 0);
    /* NATS drops B (it misses its pings): only then the change, so that its notice
       cannot wait in B's socket buffer */
    long long t = vt_now_ms();
    while (nats_clients() >= before && vt_now_ms() - t < 8000) vt_sleep_ms(100);
    printf("  NATS clients %d -> %d after %lld ms\n", before, nats_clients(), vt_now_ms() - t);
    CU_ASSERT(nats_clients() < before);
    CU_ASSERT_EQUAL(put_rule(&A, "big", V3), 200);
    vt_sleep_ms(300);
    CU_ASSERT_FATAL(kill(B.p->pid, SIGCONT) == 0);
    long long t0 = vt_now_ms();
    int v = -1;
    while ((v = rule_version(&B, "big", NULL, NULL, 0)) != 3 && vt_now_ms() - t0 < SPREAD_MS) vt_sleep_ms(50);
    printf("  B runs version %d %lld ms after SIGCONT\n", v, vt_now_ms() - t0);
    CU_ASSERT_EQUAL(v, 3);
    char *log = vt_slurp(B.log);
    const char *tail = log && strlen(log) >= off ? log + off : "";
    CU_ASSERT(strstr(tail, "generation") && strstr(tail, "found by the periodic check"));
    if (!strstr(tail, "found by the periodic check")) vt_dump_log(B.log, 2000);
    free(log);
    /* and B is back on NATS: the next change arrives by its notice */
    vt_sleep_ms(1500);
}

/* SIGHUP on A pushes its changed file like a PUT; a new instance C, whose
 * own directory holds another version of the rule, serves the shared catalog. */
static void test_directory(void) {
    char path[600];
    snprintf(path, sizeof path, "%s/rules/big.lua", dir);
    const char *v4 = "rule { name = \"big\", key = \"card\", where = { amount = gt(200) }, window = sliding(\"1m\"),\n"
                     "       when = ge(count(), 1), severity = \"critical\" }\n";
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(v4, f);
    fclose(f);
    int before = rule_version(&A, "big", NULL, NULL, 0);
    CU_ASSERT_FATAL(kill(A.p->pid, SIGHUP) == 0);
    long long t0 = vt_now_ms();
    int vb = -1;
    while ((vb = rule_version(&B, "big", NULL, NULL, 0)) != before + 1 && vt_now_ms() - t0 < SPREAD_MS + 2000) vt_sleep_ms(50);
    printf("  SIGHUP on A: B runs version %d (was %d) after %lld ms\n", vb, before, vt_now_ms() - t0);
    CU_ASSERT_EQUAL(vb, before + 1);
    /* C starts with a directory of its own holding an older text: the shared catalog wins */
    char cdir[600], cfile[700];
    snprintf(cdir, sizeof cdir, "%s/rules-c", dir);
    mkdir(cdir, 0755);
    snprintf(cfile, sizeof cfile, "%s/big.lua", cdir);
    f = fopen(cfile, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(V1, f);
    fclose(f);
    server C;
    memset(&C, 0, sizeof C);
    snprintf(C.log, sizeof C.log, "%s/serve-vigil-c.log", dir);
    char listen[64], nurl[64], rurl[64];
    C.port = low_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", C.port);
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nats_port);
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d", redis_port);
    setenv("VIGIL_CLUSTER_INSTANCE", "vigil-c", 1);
    setenv("VIGIL_CLUSTER_LEASE", "3s", 1);
    setenv("VIGIL_CLUSTER_HEARTBEAT", "500ms", 1);
    const char *argv[] = {VIGIL_BIN, "serve", "--rules", cdir, "--listen", listen, "--nats", nurl, "--jetstream",
                          "--redis", rurl, "--data-dir", "", "--workers", "1", "--partitions", "4", "--idle-timeout",
                          "0", NULL};
    C.p = vt_start_vigil(argv, C.log, C.base, sizeof C.base, 20000);
    unsetenv("VIGIL_CLUSTER_INSTANCE");
    CU_ASSERT_FATAL(C.p != NULL);
    CU_ASSERT_EQUAL(rule_version(&C, "big", NULL, NULL, 0), before + 1);
    vt_sleep_ms(2500);   /* a periodic check later: still so, on A too */
    CU_ASSERT_EQUAL(rule_version(&A, "big", NULL, NULL, 0), before + 1);
    CU_ASSERT_EQUAL(rule_version(&C, "big", NULL, NULL, 0), before + 1);
    vt_kill(C.p, SIGTERM);
}

/* 409s the two PUTs of test_race got: 0 when one finished before the
 * other began (the second then builds on the first), 1 when they raced.
 * test_metrics checks the conflict counter against it. */
static int race_conflicts = -1;

static void test_race(void) {
    const char *src[2] = {
        "rule { name = \"race\", key = \"card\", where = { amount = gt(1) }, window = sliding(\"1m\"), when = ge(count(), 5) }\n",
        "rule { name = \"race\", key = \"card\", where = { amount = gt(2) }, window = sliding(\"1m\"), when = ge(count(), 6) }\n"};
    /* both exist at version 1 first */
    CU_ASSERT_EQUAL(put_rule(&A, "race", src[0]), 201);
    long long t0 = vt_now_ms();
    while (rule_version(&B, "race", NULL, NULL, 0) != 1 && vt_now_ms() - t0 < SPREAD_MS) vt_sleep_ms(50);
    const char *v2[2] = {
        "rule { name = \"race\", key = \"card\", where = { amount = gt(3) }, window = sliding(\"1m\"), when = ge(count(), 7) }\n",
        "rule { name = \"race\", key = \"card\", where = { amount = gt(4) }, window = sliding(\"1m\"), when = ge(count(), 8) }\n"};
    pid_t kid[2];
    for (int i = 0; i < 2; i++) {
        kid[i] = fork();
        if (kid[i] == 0) {
            long st = put_rule(i ? &B : &A, "race", v2[i]);
            _exit(st == 200 ? 0 : st == 409 ? 1 : 2);
        }
    }
    int ok = 0, conflict = 0;
    race_conflicts = 0;
    for (int i = 0; i < 2; i++) {
        int ws = 0;
        waitpid(kid[i], &ws, 0);
        int rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 3;
        ok += rc == 0;
        conflict += rc == 1;
    }
    printf("  two PUTs at once: %d answered 200, %d answered 409\n", ok, conflict);
    race_conflicts = conflict;
    CU_ASSERT(ok >= 1 && ok + conflict == 2);
    /* the same version and source on both */
    t0 = vt_now_ms();
    int same = 0;
    while (!same && vt_now_ms() - t0 < SPREAD_MS) {
        long st;
        cJSON *a = get_json(&A, "/v1/rules/race", &st), *b = get_json(&B, "/v1/rules/race", &st);
        const cJSON *va = cJSON_GetObjectItemCaseSensitive(a, "version"), *vb = cJSON_GetObjectItemCaseSensitive(b, "version");
        char *sa = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(a, "versions"));
        char *sb = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(b, "versions"));
        same = cJSON_IsNumber(va) && cJSON_IsNumber(vb) && va->valuedouble == vb->valuedouble && va->valuedouble >= 2 &&
               sa && sb && strcmp(sa, sb) == 0;
        free(sa);
        free(sb);
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (!same) vt_sleep_ms(100);
    }
    CU_ASSERT(same);
}

/* A sample of s's /metrics (-1: absent). */
static double metric(const server *s, const char *sample) {
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/metrics", s->base);
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    double v = -1;
    size_t n = strlen(sample);
    for (char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, n) == 0 && p[n] == ' ') v = strtod(p + n + 1, NULL);
    free(body);
    return v;
}

static void test_metrics(void) {
    double ga = metric(&A, "vigil_cluster_rules_generation"), gb = metric(&B, "vigil_cluster_rules_generation");
    printf("  generation A %.0f, B %.0f; B synced %.0f times, saw %.0f notices; A sent %.0f\n", ga, gb,
           metric(&B, "vigil_cluster_rule_syncs_total"), metric(&B, "vigil_cluster_rule_notices_total{direction=\"seen\"}"),
           metric(&A, "vigil_cluster_rule_notices_total{direction=\"sent\"}"));
    CU_ASSERT(ga >= 4 && ga == gb);
    CU_ASSERT(metric(&B, "vigil_cluster_rule_syncs_total") >= 2);
    CU_ASSERT(metric(&A, "vigil_cluster_rule_notices_total{direction=\"sent\"}") >= 2);
    /* every 409 of the race counted, and nothing else (only the race sends
     * changes made at an older generation); whether the PUTs raced is up
     * to the scheduler, so the count is compared, not presumed */
    double conflicts = metric(&A, "vigil_cluster_rule_conflicts_total") + metric(&B, "vigil_cluster_rule_conflicts_total");
    printf("  conflicts counted %.0f, the race saw %d\n", conflicts, race_conflicts);
    CU_ASSERT(race_conflicts >= 0 && conflicts == race_conflicts);
    /* the pair's owner (either) produced the alert: the other kept it, the owner saw its own come back */
    double kept = metric(&A, "vigil_cluster_alerts_total{outcome=\"kept\"}") + metric(&B, "vigil_cluster_alerts_total{outcome=\"kept\"}");
    CU_ASSERT(kept >= 2);                                                           /* the alert, and "vigil-b"'s on A */
    CU_ASSERT(metric(&B, "vigil_cluster_alerts_total{outcome=\"duplicate\"}") >= 1); /* vigil-x's copy */
    CU_ASSERT(metric(&B, "vigil_cluster_alerts_total{outcome=\"own\"}") >= 1);       /* "vigil-b"'s */
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *unset[] = {"VIGIL_NATS", "VIGIL_REDIS", "VIGIL_RULES", "VIGIL_LISTEN", "VIGIL_FAULT", "VIGIL_CONFIG",
                           "VIGIL_CLUSTER_INSTANCE", NULL};
    for (int i = 0; unset[i]; i++) unsetenv(unset[i]);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    dir = vt_tmpdir();
    if (!dir) return 1;
    char path[600];
    snprintf(path, sizeof path, "%s/rules", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/rules/big.lua", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    fputs(V1, f);
    fclose(f);
    redis_port = low_port();
    if (!(redis = vt_start_redis(&redis_port, dir)) || start_nats() != 0 || start(&A, "vigil-a") != 0 ||
        start(&B, "vigil-b") != 0) {
        fprintf(stderr, "cannot start the servers\n");
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("rules and alerts across the cluster (issue 14)", NULL, NULL);
    if (!su || !CU_add_test(su, "a PUT on A runs on B within 3 s; instances shows both", test_change_spreads) ||
        !CU_add_test(su, "an alert of A on B's list and stream; one per id; own skipped", test_alerts_everywhere) ||
        !CU_add_test(su, "a stopped instance catches up by the periodic check", test_stopped_catches_up) ||
        !CU_add_test(su, "SIGHUP pushes the directory; a new instance serves the shared catalog", test_directory) ||
        !CU_add_test(su, "two changes at once: the generation decides, both converge", test_race) ||
        !CU_add_test(su, "the cluster metrics count it all", test_metrics)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    if (failures) {
        vt_dump_log(A.log, 3000);
        vt_dump_log(B.log, 3000);
    }
    vt_kill(A.p, SIGTERM);
    vt_kill(B.p, SIGTERM);
    vt_kill(nats, SIGTERM);
    vt_kill(redis, SIGTERM);
    free(dir);
    return failures != 0;
}
