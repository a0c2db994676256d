/* test_cluster_lease.c — the cluster wing's ownership (server/cluster/)
 * against a real nats-server with JetStream and a real redis-server, both
 * started here on loopback ports below the ephemeral range.
 *
 * Members are vigil_cluster objects in this process, each with its own NATS
 * connection and its own Redis connection: 2 key groups × 8 partitions = 16
 * pairs, lease 1500 ms, heartbeat 300 ms. Their acquired/lost callbacks
 * write one shared table under a mutex: acquired sets the pair's owner (an
 * acquire over another member's live hold, or an epoch not above the last
 * one, is counted as a violation), lost clears it (a lost of a pair the
 * member does not hold is a violation too). The tests run in order, as one
 * story:
 *   1. three members: every pair owned by exactly one, the one rendezvous
 *      hashing prefers; epochs agree with Redis; GET /v1/cluster shows it;
 *   2. a clean stop moves only the stopped member's pairs, well before a
 *      lease could expire;
 *   3. it comes back; then a crash (thread stopped, NATS closed, nothing
 *      released) moves only its pairs, and not before the lease expired;
 *   4. a fourth member joining moves at most ceil(16/4)+2 pairs, all to it;
 *   5. vigil_cluster_fenced: lost at once, taken again with a higher epoch;
 *   6. a lease rewritten in the holder's own name and epoch (a renewal whose
 *      answer was lost) is adopted; one overwritten by someone else: the
 *      renewal is refused (lost), and the pair comes back once that lease
 *      expires; the same with a value that is no lease at all;
 *   7. Redis away: a freed pair is not taken (no epoch, the lease given
 *      back); Redis back (with its AOF, so the epochs survive): it is;
 *   8. NATS away: a stop stays short (lost called, leases left to expire);
 *      every holder gives its pairs up before a lease could expire; NATS
 *      back: they are taken again;
 *   9. a hot reload adds a key group, whose pairs are shared out too.
 * Test 1 also checks the versions in the member entries and the lag hook.
 * Throughout, no two members ever hold one pair (the violations stay 0). */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "server/cluster/cluster.h"
#include "server/cluster/rendezvous.h"
#include "server/common/pairs.h"
#include "server/http/http.h"
#include "vigil/clock.h"

#define GMAX 3
#define P 8
#define LEASE 1500
#define HB 300
#define MAXM 5

static const char *groups[GMAX] = {"card", "acct.id", "device"};   /* the second one needs a token */
static char gtok[GMAX][64];
static int ng = 2;   /* the third group comes with a hot reload (test 9) */

typedef struct member {
    int idx;
    char name[32];
    natsConnection *nc;
    vigil_cluster *c;
    int up;                 /* counted in the expected owners */
} member;

static member m[MAXM];
static char *dir;
static vt_proc *redis, *nats;
static int redis_port, nats_port;
static char redis_url[64], nats_url[64];
static redisContext *direct;

/* the shared table */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int owner[GMAX][P];            /* member index, -1: nobody */
static uint64_t last_epoch[GMAX][P];
static long long taken_at[GMAX][P];   /* vt_now_ms of the last acquire */
static int takes[MAXM], losses[MAXM];
static int violations;

static void on_acquired(void *ud, int g, int p, uint64_t epoch) {
    member *me = ud;
    pthread_mutex_lock(&mu);
    if (owner[g][p] != -1) {
        violations++;
        fprintf(stderr, "VIOLATION: %s acquired %d/%d held by %s\n", me->name, g, p, m[owner[g][p]].name);
    }
    if (epoch <= last_epoch[g][p]) {
        violations++;
        fprintf(stderr, "VIOLATION: %s acquired %d/%d with epoch %llu after %llu\n", me->name, g, p,
                (unsigned long long)epoch, (unsigned long long)last_epoch[g][p]);
    }
    owner[g][p] = me->idx;
    last_epoch[g][p] = epoch;
    taken_at[g][p] = vt_now_ms();
    takes[me->idx]++;
    pthread_mutex_unlock(&mu);
}

static void on_lost(void *ud, int g, int p) {
    member *me = ud;
    pthread_mutex_lock(&mu);
    if (owner[g][p] != me->idx) {
        violations++;
        fprintf(stderr, "VIOLATION: %s lost %d/%d it did not hold\n", me->name, g, p);
    }
    owner[g][p] = -1;
    losses[me->idx]++;
    pthread_mutex_unlock(&mu);
}

/* 1 when nothing listens on 127.0.0.1:port (we could bind it). */
static int port_free(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

/* A server on a random free port in [20000, 30000): ten tries. A port
 * that looked free may be taken by another test's server meanwhile; then
 * ours exits (bind fails) while the probe reaches the other one: so ours
 * must still be alive a moment later. */
static vt_proc *start_low(vt_proc *(*start)(int *, const char *), int *port) {
    for (int i = 0; i < 10; i++) {
        *port = 20000 + rand() % 10000;
        if (!port_free(*port)) continue;
        vt_proc *pr = start(port, dir);
        if (!pr) continue;
        vt_sleep_ms(200);
        if (vt_alive(pr)) return pr;
        vt_kill(pr, SIGKILL);
    }
    return NULL;
}

static int start_member(int i) {
    member *x = &m[i];
    x->idx = i;
    snprintf(x->name, sizeof x->name, "vigil-%c", 'a' + i);
    if (natsConnection_ConnectTo(&x->nc, nats_url) != NATS_OK) return -1;
    vigil_cluster_config cfg = {
        .nc = x->nc, .redis_url = redis_url, .redis_prefix = "vigil", .instance = x->name,
        .http_url = "http://127.0.0.1:1", .lease_ms = LEASE, .heartbeat_ms = HB, .kv_prefix = "VIGIL",
        .groups = groups, .ngroups = ng, .partitions = P, .acquired = on_acquired, .lost = on_lost, .ud = x};
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_cluster_start(&cfg, &x->c, &err) != VIGIL_OK) {
        fprintf(stderr, "start %s: %s\n", x->name, err.msg);
        return -1;
    }
    x->up = 1;
    return 0;
}

static void close_member(int i) {
    vigil_cluster_destroy(m[i].c);
    m[i].c = NULL;
    if (m[i].nc) natsConnection_Destroy(m[i].nc);
    m[i].nc = NULL;
    m[i].up = 0;
}

/* The member rendezvous hashing prefers for (g, p) among the members up. */
static int expected(int g, int p) {
    const char *names[MAXM];
    for (int i = 0; i < MAXM; i++) names[i] = m[i].up ? m[i].name : NULL;
    return vigil_rendezvous_pick(names, MAXM, gtok[g], p);
}

/* Until every pair is held by its preferred member (1) or timeout_ms (0). */
static int wait_stable(int timeout_ms) {
    long long t0 = vt_now_ms();
    for (;;) {
        int ok = 1;
        pthread_mutex_lock(&mu);
        for (int g = 0; g < ng; g++)
            for (int p = 0; p < P; p++)
                if (owner[g][p] != expected(g, p)) ok = 0;
        pthread_mutex_unlock(&mu);
        if (ok) return 1;
        if (vt_now_ms() - t0 > timeout_ms) return 0;
        vt_sleep_ms(20);
    }
}

static void snapshot(int own[GMAX][P], uint64_t ep[GMAX][P]) {
    pthread_mutex_lock(&mu);
    memcpy(own, owner, sizeof owner);
    memcpy(ep, last_epoch, sizeof last_epoch);
    pthread_mutex_unlock(&mu);
}

static long long redis_epoch(int g, int p) {
    char key[VIGIL_PAIR_NAME_MAX];
    vigil_pair_epoch_key(key, sizeof key, "vigil", groups[g], p);
    redisReply *r = redisCommand(direct, "GET %s", key);
    long long v = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
    if (r) freeReplyObject(r);
    return v;
}

static int group_index(const char *name) {
    for (int g = 0; g < GMAX; g++)
        if (name && strcmp(name, groups[g]) == 0) return g;
    return 0;
}

static uint64_t lag_of(void *ud, int g, int p) {
    (void)ud;
    return (uint64_t)(1000 + g * 100 + p);
}

static int suite_init(void) {
    srand((unsigned)getpid() * 2654435761u ^ (unsigned)vt_now_ms());
    for (int g = 0; g < GMAX; g++) vigil_cluster_group_token(groups[g], gtok[g], sizeof gtok[g]);
    for (int g = 0; g < GMAX; g++)
        for (int p = 0; p < P; p++) owner[g][p] = -1;
    if (!(dir = vt_tmpdir())) return -1;
    if (!(redis = start_low(vt_start_redis_aof, &redis_port)) || !(nats = start_low(vt_start_nats, &nats_port))) return -1;
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", redis_port);
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%d", nats_port);
    struct timeval tv = {2, 0};
    direct = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    return direct && !direct->err ? 0 : -1;
}

static int suite_clean(void) {
    for (int i = 0; i < MAXM; i++) close_member(i);
    if (direct) redisFree(direct);
    vt_kill(redis, SIGTERM);
    vt_kill(nats, SIGTERM);
    free(dir);
    return 0;
}

/* 1. three members share the 16 pairs as rendezvous hashing says */
static void test_three_members(void) {
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL_FATAL(start_member(i), 0);
    long long t0 = vt_now_ms();
    CU_ASSERT_FATAL(wait_stable(5000));
    printf("\n  three members hold all %d pairs after %lld ms\n", ng * P, vt_now_ms() - t0);
    int held[3] = {0};
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++) {
            int o = owner[g][p];
            held[o]++;
            for (int i = 0; i < 3; i++)   /* only the owner reports an epoch, the one in Redis */
                CU_ASSERT_EQUAL(vigil_cluster_epoch(m[i].c, g, p), i == o ? last_epoch[g][p] : 0);
            CU_ASSERT_EQUAL(redis_epoch(g, p), (long long)last_epoch[g][p]);
        }
    for (int i = 0; i < 3; i++) CU_ASSERT(held[i] > 0);   /* with these names each gets some */
    vigil_cluster_set_versions(m[1].c, "{\"high_value\":3,\"velocity\":1}");
    vigil_cluster_set_versions(m[1].c, "[1]");   /* not an object: refused, the previous ones stay */
    vigil_cluster_set_lag_fn(m[0].c, lag_of, NULL);
    vigil_cluster_stats st;
    vt_sleep_ms(2 * HB);   /* a heartbeat after the last take: everyone sees three */
    vigil_cluster_get_stats(m[0].c, &st);
    CU_ASSERT_EQUAL(st.members, 3);
    CU_ASSERT_EQUAL(st.acquired, (unsigned long long)takes[0]);
    CU_ASSERT(st.renewals > 0);

    /* GET /v1/cluster through the HTTP edge */
    vigil_http *h = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_http_create("127.0.0.1:0", 1 << 20, &h, &err), VIGIL_OK);
    vigil_cluster_http(m[0].c, h);
    CU_ASSERT_EQUAL_FATAL(vigil_http_start(h, &err), VIGIL_OK);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/cluster", vigil_http_port(h));
    long status = 0;
    char *body = NULL;
    cJSON *o = NULL;
    /* the view is the last heartbeat's: wait until it has caught up with the table */
    for (long long t1 = vt_now_ms(); vt_now_ms() - t1 < 3000; vt_sleep_ms(50)) {
        cJSON_Delete(o);
        free(body);
        body = vt_http("GET", url, NULL, 0, NULL, &status);
        o = cJSON_Parse(body);
        int same = 1;
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "pairs")) {
            int g = group_index(cJSON_GetStringValue(cJSON_GetObjectItem(it, "group")));
            int p = cJSON_GetObjectItem(it, "p")->valueint;
            const char *ow = cJSON_GetStringValue(cJSON_GetObjectItem(it, "owner"));
            if (!ow || strcmp(ow, m[owner[g][p]].name) != 0 ||
                (uint64_t)cJSON_GetObjectItem(it, "epoch")->valuedouble != last_epoch[g][p])
                same = 0;
        }
        if (same) break;
    }
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(o, "instance")), "vigil-a");
    cJSON *members = cJSON_GetObjectItem(o, "members"), *pairs = cJSON_GetObjectItem(o, "pairs");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(members), 3);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(pairs), ng * P);
    int total = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, members) {
        CU_ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(it, "live")));
        total += cJSON_GetObjectItem(it, "pairs")->valueint;
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(it, "instance"));
        CU_ASSERT_EQUAL(cJSON_IsTrue(cJSON_GetObjectItem(it, "self")), strcmp(name, "vigil-a") == 0);
        CU_ASSERT_STRING_EQUAL(cJSON_GetStringValue(cJSON_GetObjectItem(it, "http")), "http://127.0.0.1:1");
        CU_ASSERT(cJSON_GetObjectItem(it, "age_ms")->valuedouble <= 2 * HB + 200);
        cJSON *v = cJSON_GetObjectItem(it, "versions");   /* b's versions, as b put them */
        if (strcmp(name, "vigil-b") == 0) {
            CU_ASSERT_EQUAL(cJSON_GetObjectItem(v, "high_value") ? cJSON_GetObjectItem(v, "high_value")->valueint : 0, 3);
            CU_ASSERT_EQUAL(cJSON_GetArraySize(v), 2);
        } else {
            CU_ASSERT_EQUAL(cJSON_GetArraySize(v), 0);
        }
    }
    CU_ASSERT_EQUAL(total, ng * P);
    cJSON_ArrayForEach(it, pairs) {
        int g = group_index(cJSON_GetStringValue(cJSON_GetObjectItem(it, "group")));
        int p = cJSON_GetObjectItem(it, "p")->valueint;
        const char *ow = cJSON_GetStringValue(cJSON_GetObjectItem(it, "owner"));
        CU_ASSERT(ow && strcmp(ow, m[owner[g][p]].name) == 0);
        CU_ASSERT_EQUAL((uint64_t)cJSON_GetObjectItem(it, "epoch")->valuedouble, last_epoch[g][p]);
        CU_ASSERT(cJSON_GetObjectItem(it, "lease_age_ms")->valuedouble <= LEASE);
        cJSON *lag = cJSON_GetObjectItem(it, "lag");   /* only on a's own pairs, from its hook */
        if (owner[g][p] == 0) {
            CU_ASSERT(lag && lag->valueint == 1000 + g * 100 + p);
        } else {
            CU_ASSERT_PTR_NULL(lag);
        }
    }
    cJSON_Delete(o);
    free(body);
    vigil_http_destroy(h);
}

/* 2. a clean stop hands over at once, and only the stopped member's pairs */
static void test_clean_stop(void) {
    int before[GMAX][P];
    uint64_t ep[GMAX][P];
    snapshot(before, ep);
    long long t0 = vt_now_ms();
    vigil_cluster_stop(m[2].c);
    m[2].up = 0;
    pthread_mutex_lock(&mu);
    for (int g = 0; g < ng; g++)   /* lost was called for each of its pairs before stop returned */
        for (int p = 0; p < P; p++) CU_ASSERT_NOT_EQUAL(owner[g][p], 2);
    pthread_mutex_unlock(&mu);
    CU_ASSERT_FATAL(wait_stable(3000));
    long long took = vt_now_ms() - t0;
    printf("  clean stop of vigil-c: its pairs moved in %lld ms\n", took);
    CU_ASSERT(took < LEASE);   /* handed over, not expired */
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++)
            if (before[g][p] != 2) {
                CU_ASSERT_EQUAL(owner[g][p], before[g][p]);
                CU_ASSERT_EQUAL(last_epoch[g][p], ep[g][p]);   /* not even taken again */
            }
    close_member(2);
}

/* 3. vigil-c back; then vigil-b crashes: its pairs move after its leases expire */
static void test_crash(void) {
    CU_ASSERT_EQUAL_FATAL(start_member(2), 0);
    CU_ASSERT_FATAL(wait_stable(5000));
    int before[GMAX][P];
    uint64_t ep[GMAX][P];
    snapshot(before, ep);
    vigil_cluster_crash_for_test(m[1].c);
    long long t0 = vt_now_ms();
    natsConnection_Close(m[1].nc);
    m[1].up = 0;
    pthread_mutex_lock(&mu);   /* the process is gone: its holds with it */
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++)
            if (owner[g][p] == 1) owner[g][p] = -1;
    pthread_mutex_unlock(&mu);
    CU_ASSERT_FATAL(wait_stable(LEASE + 10 * HB + 2000));
    long long first = -1;
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++) {
            if (before[g][p] == 1) {
                if (first < 0 || taken_at[g][p] < first) first = taken_at[g][p];
            } else {
                CU_ASSERT_EQUAL(owner[g][p], before[g][p]);
                CU_ASSERT_EQUAL(last_epoch[g][p], ep[g][p]);
            }
        }
    printf("  crash of vigil-b: its first pair moved after %lld ms, all after %lld ms\n", first - t0,
           vt_now_ms() - t0);
    /* its last renewal was at most a heartbeat before the crash */
    CU_ASSERT(first - t0 >= LEASE - HB - 100);
    close_member(1);
}

/* 4. vigil-d joins (a, c, d up): at most ceil(16/4)+2 pairs move, all to it */
static void test_join(void) {
    int before[GMAX][P];
    uint64_t ep[GMAX][P];
    snapshot(before, ep);
    CU_ASSERT_EQUAL_FATAL(start_member(3), 0);
    CU_ASSERT_FATAL(wait_stable(5000));
    int moved = 0;
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++)
            if (owner[g][p] != before[g][p]) {
                moved++;
                CU_ASSERT_EQUAL(owner[g][p], 3);
            }
    printf("  vigil-d joined: %d pairs moved to it\n", moved);
    CU_ASSERT(moved >= 1 && moved <= (ng * P + 3) / 4 + 2);
}

static int find_owned_by(int i, int *gp, int *pp) {
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++)
            if (owner[g][p] == i) {
                *gp = g;
                *pp = p;
                return 1;
            }
    return 0;
}

/* 5. fenced: lost at once (well within a heartbeat), then taken again by
 * the same preferred member with a higher epoch */
static void test_fenced(void) {
    int g = 0, p = 0;
    pthread_mutex_lock(&mu);
    int found = find_owned_by(0, &g, &p);
    int losses0 = losses[0];
    uint64_t e0 = last_epoch[g][p];
    pthread_mutex_unlock(&mu);
    CU_ASSERT_FATAL(found);
    vigil_cluster_stats s0, s1;
    vigil_cluster_get_stats(m[0].c, &s0);
    long long t0 = vt_now_ms();
    vigil_cluster_fenced(m[0].c, g, p);
    long long lost_at = -1;
    while (vt_now_ms() - t0 < 2000 && lost_at < 0) {
        pthread_mutex_lock(&mu);
        if (losses[0] > losses0) lost_at = vt_now_ms();
        pthread_mutex_unlock(&mu);
        vt_sleep_ms(2);
    }
    CU_ASSERT_FATAL(lost_at >= 0);
    printf("  fenced %s/p%d: lost after %lld ms\n", groups[g], p, lost_at - t0);
    CU_ASSERT(lost_at - t0 < HB);
    CU_ASSERT_FATAL(wait_stable(3000));
    CU_ASSERT_EQUAL(owner[g][p], 0);
    CU_ASSERT(last_epoch[g][p] > e0);
    CU_ASSERT_EQUAL(vigil_cluster_epoch(m[0].c, g, p), last_epoch[g][p]);
    CU_ASSERT_EQUAL(redis_epoch(g, p), (long long)last_epoch[g][p]);
    vigil_cluster_get_stats(m[0].c, &s1);
    CU_ASSERT_EQUAL(s1.fenced, s0.fenced + 1);
}

/* 6. someone else writes the lease (an operator, a member that paused past
 * its lease): the holder's next renewal is refused, it loses the pair, and
 * takes it back once that foreign lease is older than the lease time. */
static void test_lease_overwritten(void) {
    int g = 0, p = 0;
    pthread_mutex_lock(&mu);
    int found = find_owned_by(3, &g, &p);
    uint64_t e0 = last_epoch[g][p];
    pthread_mutex_unlock(&mu);
    CU_ASSERT_FATAL(found);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    CU_ASSERT_FATAL(natsConnection_ConnectTo(&nc, nats_url) == NATS_OK);
    CU_ASSERT_FATAL(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    CU_ASSERT_FATAL(js_KeyValue(&kv, js, "VIGIL_leases") == NATS_OK);
    char key[VIGIL_PAIR_NAME_MAX], val[128];
    vigil_pair_lease_key(key, sizeof key, groups[g], p);
    /* first a write in the holder's own name and epoch (as when the answer
     * to one of its renewals was lost): it keeps the pair */
    char own[160];
    snprintf(own, sizeof own, "{\"instance\":\"vigil-d\",\"epoch\":%llu,\"renewed_ms\":%lld}",
             (unsigned long long)e0, (long long)vigil_now_ms());
    int losses3 = losses[3];
    CU_ASSERT_FATAL(kvStore_PutString(NULL, kv, key, own) == NATS_OK);
    vt_sleep_ms(3 * HB);
    CU_ASSERT_EQUAL(owner[g][p], 3);
    CU_ASSERT_EQUAL(losses[3], losses3);
    CU_ASSERT_EQUAL(vigil_cluster_epoch(m[3].c, g, p), e0);
    /* then someone else's */
    snprintf(val, sizeof val, "{\"instance\":\"intruder\",\"epoch\":0,\"renewed_ms\":%lld}",
             (long long)vigil_now_ms());
    vigil_cluster_stats s0, s1;
    vigil_cluster_get_stats(m[3].c, &s0);
    long long t0 = vt_now_ms();
    CU_ASSERT_FATAL(kvStore_PutString(NULL, kv, key, val) == NATS_OK);
    while (vt_now_ms() - t0 < 3 * HB) {
        pthread_mutex_lock(&mu);
        int gone = owner[g][p] == -1;
        pthread_mutex_unlock(&mu);
        if (gone) break;
        vt_sleep_ms(5);
    }
    long long lost_after = vt_now_ms() - t0;
    CU_ASSERT_EQUAL(owner[g][p], -1);
    vigil_cluster_get_stats(m[3].c, &s1);
    CU_ASSERT(s1.renew_failures > s0.renew_failures);
    CU_ASSERT_FATAL(wait_stable(LEASE + 5 * HB));
    long long back_after = vt_now_ms() - t0;
    printf("  lease of %s/p%d overwritten: lost after %lld ms, back after %lld ms\n", groups[g], p, lost_after,
           back_after);
    CU_ASSERT(back_after >= LEASE);        /* not before the intruder's lease expired */
    CU_ASSERT(last_epoch[g][p] > e0);
    /* last, a value that is no lease at all: lost, and taken back once its
     * Created time is a lease old */
    uint64_t e1 = last_epoch[g][p];
    t0 = vt_now_ms();
    CU_ASSERT_FATAL(kvStore_PutString(NULL, kv, key, "not a lease") == NATS_OK);
    for (long long t1 = vt_now_ms(); vt_now_ms() - t1 < 3 * HB && owner[g][p] != -1;) vt_sleep_ms(5);
    CU_ASSERT_EQUAL(owner[g][p], -1);
    CU_ASSERT_FATAL(wait_stable(LEASE + 5 * HB));
    back_after = vt_now_ms() - t0;
    printf("  lease of %s/p%d overwritten with garbage: back after %lld ms\n", groups[g], p, back_after);
    CU_ASSERT(back_after >= LEASE);
    CU_ASSERT(last_epoch[g][p] > e1);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* 7. no Redis, no epoch, no take: the lease is given back; Redis back, taken */
static void test_redis_down(void) {
    vt_kill(redis, SIGKILL);   /* with its AOF: the epochs survive, as they must in production */
    redis = NULL;
    redisFree(direct);
    direct = NULL;
    vigil_cluster_stop(m[2].c);   /* its pairs are freed; a and d prefer them now */
    m[2].up = 0;
    vt_sleep_ms(LEASE);
    int free_pairs = 0;
    pthread_mutex_lock(&mu);
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++)
            if (owner[g][p] == -1) free_pairs++;
    pthread_mutex_unlock(&mu);
    CU_ASSERT(free_pairs > 0);
    /* the leases were given back: none of the free pairs has a live lease */
    cJSON *o = vigil_cluster_json(m[0].c);
    cJSON *it;
    int leased_free = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(o, "pairs")) {
        int g = group_index(cJSON_GetStringValue(cJSON_GetObjectItem(it, "group")));
        int p = cJSON_GetObjectItem(it, "p")->valueint;
        if (owner[g][p] == -1 && !cJSON_IsNull(cJSON_GetObjectItem(it, "owner"))) leased_free++;
    }
    cJSON_Delete(o);
    CU_ASSERT(leased_free <= 1);   /* at most one caught between its Create and the give-back */
    int port = redis_port;
    redis = vt_restart_redis_aof(NULL, SIGKILL, port, dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    struct timeval tv = {2, 0};
    direct = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    CU_ASSERT_FATAL(direct && !direct->err);
    CU_ASSERT_FATAL(wait_stable(5000));
    printf("  Redis away: %d pairs stayed free; back: taken\n", free_pairs);
    close_member(2);
}

/* 8. NATS away: every holder gives its pairs up before a lease could
 * expire (nobody could take them, but nobody must still think it holds
 * them once it might); NATS back with its store: they are taken again. */
static void test_nats_away(void) {
    long long t0 = vt_now_ms();
    vt_kill(nats, SIGKILL);
    nats = NULL;
    /* vigil-d stops meanwhile: lost for each of its pairs, its leases left
     * to expire, and the stop stays short */
    vigil_cluster_stop(m[3].c);
    long long stop_ms = vt_now_ms() - t0;
    m[3].up = 0;
    pthread_mutex_lock(&mu);
    for (int g = 0; g < ng; g++)
        for (int p = 0; p < P; p++) CU_ASSERT_NOT_EQUAL(owner[g][p], 3);
    pthread_mutex_unlock(&mu);
    printf("\n  NATS away: vigil-d stopped in %lld ms\n", stop_ms);
    CU_ASSERT(stop_ms < 3 * HB);
    long long all_lost = -1;
    while (vt_now_ms() - t0 < LEASE + 1000 && all_lost < 0) {
        int held = 0;
        pthread_mutex_lock(&mu);
        for (int g = 0; g < ng; g++)
            for (int p = 0; p < P; p++)
                if (owner[g][p] != -1) held++;
        pthread_mutex_unlock(&mu);
        if (held == 0) all_lost = vt_now_ms() - t0;
        vt_sleep_ms(10);
    }
    printf("  NATS away: every pair given up after %lld ms\n", all_lost);
    CU_ASSERT(all_lost >= 0 && all_lost < LEASE);
    nats = vt_restart_nats(NULL, SIGKILL, nats_port, dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nats);
    long long t1 = vt_now_ms();
    CU_ASSERT_FATAL(wait_stable(10000));
    printf("  NATS back: all pairs held again after %lld ms\n", vt_now_ms() - t1);
    close_member(3);
}

/* 9. a hot reload adds a key group: its pairs are shared out too; a list
 * that drops or reorders groups is refused */
static void test_more_groups(void) {
    const char *wrong[] = {"acct.id", "card", "device"};
    vigil_cluster_set_groups(m[0].c, wrong, 3);
    cJSON *o = vigil_cluster_json(m[0].c);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(o, "groups")), 2);
    cJSON_Delete(o);
    for (int i = 0; i < MAXM; i++)
        if (m[i].up) vigil_cluster_set_groups(m[i].c, groups, 3);
    pthread_mutex_lock(&mu);
    ng = 3;
    pthread_mutex_unlock(&mu);
    CU_ASSERT_FATAL(wait_stable(3000));
    for (int p = 0; p < P; p++) CU_ASSERT_EQUAL(redis_epoch(2, p), (long long)last_epoch[2][p]);
    o = vigil_cluster_json(m[0].c);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(o, "pairs")), 3 * P);
    cJSON_Delete(o);
}

static void test_no_violation(void) {
    CU_ASSERT_EQUAL(violations, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("cluster leases", suite_init, suite_clean);
    CU_add_test(s, "three members share the pairs", test_three_members);
    CU_add_test(s, "a clean stop moves only its pairs, at once", test_clean_stop);
    CU_add_test(s, "a crash moves only its pairs, after the lease", test_crash);
    CU_add_test(s, "a member joining takes few pairs, for itself", test_join);
    CU_add_test(s, "fenced: lost at once, taken again with a new epoch", test_fenced);
    CU_add_test(s, "a lease overwritten: renewal refused, taken back later", test_lease_overwritten);
    CU_add_test(s, "Redis away: no epoch, no take", test_redis_down);
    CU_add_test(s, "NATS away: pairs given up in time, taken again", test_nats_away);
    CU_add_test(s, "a hot reload adds a key group", test_more_groups);
    CU_add_test(s, "never two holders", test_no_violation);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f != 0;
}
