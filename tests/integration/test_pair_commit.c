/* test_pair_commit.c — cluster mode's fenced commit per (group, partition)
 * pair (server/state/redis_pairs.c, issue 14), against a real redis-server
 * started on a loopback port below the ephemeral range.
 *
 * What must hold: one commit applies each pair's key states, offset and
 * outbox entries together; a pair whose epoch moved (another owner) applies
 * nothing while the other pairs of the same pipeline apply; a retried commit
 * (same offset) writes no second outbox entry, while a watermark advance
 * (same seq, later wm) is a new commit; every key a pair's script declares
 * carries the pair's hash tag (read back from MONITOR); a flushed script
 * cache costs a retry with EVAL, not a failure; a record outside its pair is
 * refused before anything is sent; a dropped connection makes every pair's
 * outcome unknown and the retried batch applies once. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "outbox.h"
#include "redis_store.h"
#include "vigil/ruleset.h"

#define P 8
#define G "customer_id"

static char *dir;
static int port;
static vt_proc *redis;
static char url[128];
static vigil_store *st;
static redisContext *direct;

/* A port below 32768 (outside the ephemeral range) that binds now. */
static int low_port(void) {
    for (int i = 0; i < 200; i++) {
        int p = 20000 + (int)((unsigned)(getpid() * 7919 + i * 104729 + (int)vt_now_ms()) % 12000u);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) close(fd);
        if (ok) return p;
    }
    return -1;
}

static redisContext *direct_connect(void) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* The n-th key (from `from`) of pair partition p: "<stem><i>". */
static void key_in(int p, const char *stem, int nth, char *buf, size_t n) {
    for (int i = 0, found = 0;; i++) {
        snprintf(buf, n, "%s%d", stem, i);
        if (vigil_hash(buf, strlen(buf)) % P == (uint64_t)p && found++ == nth) return;
    }
}

static long long xlen(const char *group, int p) {
    char k[256];
    vigil_redis_pair_key("pc", group, p, "outbox", k, sizeof k);
    redisReply *r = redisCommand(direct, "XLEN %s", k);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

/* GET of a raw key into buf ("" when absent). */
static void get_raw(const char *key, char *buf, size_t n) {
    redisReply *r = redisCommand(direct, "GET %s", key);
    snprintf(buf, n, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r) freeReplyObject(r);
}

static void get_state(const char *key, char *buf, size_t n) {
    char k[512];
    size_t kl;
    vigil_redis_store_key(st, G, key, strlen(key), k, sizeof k - 1, &kl);
    k[kl] = 0;
    get_raw(k, buf, n);
}

static uint64_t take_pair(int p) {   /* what acquiring a pair does */
    uint64_t e = 0;
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_redis_store_epoch_incr(st, G, p, &e, &err), VIGIL_OK);
    return e;
}

/* An alert and its outbox field list. */
typedef struct talert {
    char id[40], key[32], json[200];
    vigil_alert_record a;
    const char *av[VIGIL_OUTBOX_FIELDS_ARGC];
    size_t al[VIGIL_OUTBOX_FIELDS_ARGC];
} talert;

static void mk_alert(talert *t, const char *id, const char *key) {
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->key, sizeof t->key, "%s", key);
    int n = snprintf(t->json, sizeof t->json, "{\"id\":\"%s\",\"key\":\"%s\"}", id, key);
    memset(&t->a, 0, sizeof t->a);
    vigil_alert_record_set(&t->a, t->id, "r1", "high", t->key, VIGIL_MODE_ACTIVE, t->json, (size_t)n);
}

static vigil_redis_cmd fields(talert *t) {
    int n = vigil_outbox_fields(&t->a, t->av, t->al);
    return (vigil_redis_cmd){n, t->av, t->al};
}

static vigil_store_record rec(const char *key, const char *val, int64_t ttl) {
    vigil_store_record r;
    memset(&r, 0, sizeof r);
    r.k.group_name = G;
    r.k.key = key;
    r.k.keylen = strlen(key);
    r.data = (const unsigned char *)val;
    r.len = val ? strlen(val) : 0;
    r.ttl_ms = ttl;
    return r;
}

/* ---- tests --------------------------------------------------------------- */

static void test_applies_each_pair(void) {
    char ka[2][32], kb[32], buf[256], okey[256];
    key_in(1, "a", 0, ka[0], sizeof ka[0]);
    key_in(1, "a", 1, ka[1], sizeof ka[1]);
    key_in(2, "b", 0, kb, sizeof kb);
    uint64_t ea = take_pair(1), eb = take_pair(2);
    vigil_store_record ra[2] = {rec(ka[0], "state-a0", 0), rec(ka[1], "state-a1", 60000)};
    vigil_store_record rb[1] = {rec(kb, "state-b", 0)};
    talert al[3];
    mk_alert(&al[0], "0000000000000000000000000000a001", ka[0]);
    mk_alert(&al[1], "0000000000000000000000000000a002", ka[1]);
    mk_alert(&al[2], "0000000000000000000000000000b001", kb);
    vigil_redis_cmd oa[2] = {fields(&al[0]), fields(&al[1])}, ob[1] = {fields(&al[2])};
    vigil_redis_pair_commit pc[2] = {
        {.group_name = G, .partition = 1, .epoch = ea, .seq = 10, .wm = 1000, .recs = ra, .nrecs = 2, .outbox = oa, .noutbox = 2},
        {.group_name = G, .partition = 2, .epoch = eb, .seq = 11, .wm = 1000, .recs = rb, .nrecs = 1, .outbox = ob, .noutbox = 1},
    };
    vigil_pair_result res[2];
    vigil_error err;
    vigil_error_clear(&err);
    vigil_redis_stats before, after;
    vigil_redis_store_stats(st, &before);
    vigil_status s = vigil_redis_store_commit_pairs(st, pc, 2, res, &err);
    vigil_redis_store_stats(st, &after);
    CU_ASSERT_EQUAL_FATAL(s, VIGIL_OK);
    if (s != VIGIL_OK) fprintf(stderr, "commit: %s\n", err.msg);
    CU_ASSERT_EQUAL(after.round_trips - before.round_trips, 1);   /* both pairs in one round trip */
    CU_ASSERT(res[0].status == VIGIL_OK && !res[0].already && res[1].status == VIGIL_OK && !res[1].already);
    get_state(ka[0], buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "state-a0");
    get_state(ka[1], buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "state-a1");
    get_state(kb, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "state-b");
    /* the TTL'd record has one, the other none */
    char k[512];
    size_t kl;
    vigil_redis_store_key(st, G, ka[1], strlen(ka[1]), k, sizeof k - 1, &kl);
    k[kl] = 0;
    redisReply *r = redisCommand(direct, "PTTL %s", k);
    CU_ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 60000);
    freeReplyObject(r);
    vigil_redis_pair_key("pc", G, 1, "offset", okey, sizeof okey);
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "10 1000");
    uint64_t seq = 0;
    int64_t wm = 0;
    CU_ASSERT_EQUAL(vigil_redis_store_load_pair_offset(st, G, 2, &seq, &wm, &err), VIGIL_OK);
    CU_ASSERT(seq == 11 && wm == 1000);
    CU_ASSERT_EQUAL(vigil_redis_store_load_pair_offset(st, G, 5, &seq, &wm, &err), VIGIL_OK);
    CU_ASSERT(seq == 0 && wm == INT64_MIN);   /* never committed */
    CU_ASSERT_EQUAL(xlen(G, 1), 2);
    CU_ASSERT_EQUAL(xlen(G, 2), 1);
    /* the entry has the fields of outbox.h, in order */
    vigil_redis_pair_key("pc", G, 1, "outbox", okey, sizeof okey);
    r = redisCommand(direct, "XRANGE %s - +", okey);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    redisReply *fv = r->element[0]->element[1];
    CU_ASSERT_EQUAL(fv->elements, 12);
    CU_ASSERT_STRING_EQUAL(fv->element[0]->str, "id");
    CU_ASSERT_STRING_EQUAL(fv->element[1]->str, "0000000000000000000000000000a001");
    CU_ASSERT_STRING_EQUAL(fv->element[8]->str, "mode");
    CU_ASSERT_STRING_EQUAL(fv->element[9]->str, "active");
    CU_ASSERT_STRING_EQUAL(fv->element[11]->str, al[0].json);
    CU_ASSERT_STRING_EQUAL(r->element[1]->element[1]->element[1]->str, "0000000000000000000000000000a002");
    freeReplyObject(r);
    /* a DEL record removes the key */
    vigil_store_record del = rec(ka[0], NULL, 0);
    vigil_redis_pair_commit pd = {.group_name = G, .partition = 1, .epoch = ea, .seq = 12, .wm = 1000, .recs = &del, .nrecs = 1};
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pd, 1, res, &err), VIGIL_OK);
    get_state(ka[0], buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    vigil_redis_pair_key("pc", G, 1, "offset", okey, sizeof okey);
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "12 1000");
}

static void test_stale_pair_alone(void) {
    char ka[32], kb[32], buf[256], okey[256];
    key_in(3, "s", 0, ka, sizeof ka);
    key_in(4, "t", 0, kb, sizeof kb);
    uint64_t ea = take_pair(3), eb = take_pair(4);
    uint64_t taken = take_pair(3);   /* another instance takes pair 3 */
    CU_ASSERT_EQUAL(taken, ea + 1);
    vigil_store_record ra = rec(ka, "mine", 0), rb = rec(kb, "also-mine", 0);
    talert al[2];
    mk_alert(&al[0], "0000000000000000000000000000c001", ka);
    mk_alert(&al[1], "0000000000000000000000000000c002", kb);
    vigil_redis_cmd oa = fields(&al[0]), ob = fields(&al[1]);
    vigil_redis_pair_commit pc[2] = {
        {.group_name = G, .partition = 3, .epoch = ea, .seq = 20, .wm = 5, .recs = &ra, .nrecs = 1, .outbox = &oa, .noutbox = 1},
        {.group_name = G, .partition = 4, .epoch = eb, .seq = 21, .wm = 5, .recs = &rb, .nrecs = 1, .outbox = &ob, .noutbox = 1},
    };
    vigil_pair_result res[2];
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = vigil_redis_store_commit_pairs(st, pc, 2, res, &err);
    CU_ASSERT_EQUAL(s, VIGIL_ESTALE);
    CU_ASSERT(strstr(err.msg, "stale") != NULL);
    CU_ASSERT_EQUAL(res[0].status, VIGIL_ESTALE);
    CU_ASSERT_EQUAL(res[0].epoch, taken);
    CU_ASSERT_EQUAL(res[1].status, VIGIL_OK);
    get_state(ka, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");          /* nothing of pair 3 */
    vigil_redis_pair_key("pc", G, 3, "offset", okey, sizeof okey);
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    CU_ASSERT_EQUAL(xlen(G, 3), 0);
    get_state(kb, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "also-mine");  /* pair 4 applied */
    CU_ASSERT_EQUAL(xlen(G, 4), 1);
    uint64_t e = 0;
    CU_ASSERT_EQUAL(vigil_redis_store_epoch_get(st, G, 3, &e, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(e, taken);
    /* the new owner's epoch works */
    pc[0].epoch = taken;
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, pc, 1, res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(xlen(G, 3), 1);
}

static void test_retry_not_twice(void) {
    char k0[32], buf[256], okey[256];
    key_in(5, "r", 0, k0, sizeof k0);
    uint64_t e = take_pair(5);
    vigil_store_record r0 = rec(k0, "v1", 0);
    talert a;
    mk_alert(&a, "0000000000000000000000000000d001", k0);
    vigil_redis_cmd o = fields(&a);
    vigil_redis_pair_commit pc = {.group_name = G, .partition = 5, .epoch = e, .seq = 30, .wm = 7000,
                                  .recs = &r0, .nrecs = 1, .outbox = &o, .noutbox = 1};
    vigil_pair_result res;
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 0);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);   /* the retry */
    CU_ASSERT_EQUAL(res.status, VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 1);
    CU_ASSERT_EQUAL(xlen(G, 5), 1);                 /* no second outbox entry */
    /* an older commit writes nothing: neither the offset nor its records */
    pc.seq = 29;
    r0 = rec(k0, "v-old", 0);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 1);
    get_state(k0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "v1");
    vigil_redis_pair_key("pc", G, 5, "offset", okey, sizeof okey);
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "30 7000");
    CU_ASSERT_EQUAL(xlen(G, 5), 1);
    /* a watermark advance (same seq, later wm) is a new commit */
    pc.seq = 30;
    pc.wm = 8000;
    r0 = rec(k0, "v2", 0);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 0);
    CU_ASSERT_EQUAL(xlen(G, 5), 2);
    get_state(k0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "v2");
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "30 8000");
    /* seq compared as a number, not as text: 100 > 99 */
    pc.seq = 99;
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    pc.seq = 100;
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 0);
    CU_ASSERT_EQUAL(xlen(G, 5), 4);
}

/* One MONITOR line's quoted arguments (escapes \" \\ \xNN \n …). */
static int monitor_args(const char *line, char args[][300], int max) {
    int n = 0;
    const char *p = strchr(line, ']');
    if (!p) return 0;
    while (n < max && (p = strchr(p, '"'))) {
        p++;
        size_t l = 0;
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\' && *p) {
                c = *p++;
                if (c == 'x' && p[0] && p[1]) {
                    char hx[3] = {p[0], p[1], 0};
                    c = (char)strtol(hx, NULL, 16);
                    p += 2;
                } else if (c == 'n') c = '\n';
            }
            if (l < 299) args[n][l++] = c;
        }
        args[n][l] = 0;
        if (*p) p++;
        n++;
    }
    return n;
}

static void test_every_key_has_the_pairs_tag(void) {
    redisContext *mon = direct_connect();
    CU_ASSERT_FATAL(mon != NULL);
    redisReply *r = redisCommand(mon, "MONITOR");
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    char k6[3][32], k7[32];
    for (int i = 0; i < 3; i++) key_in(6, "m", i, k6[i], sizeof k6[i]);
    key_in(7, "n", 0, k7, sizeof k7);
    uint64_t e6 = take_pair(6), e7 = take_pair(7);
    vigil_store_record r6[3] = {rec(k6[0], "x", 0), rec(k6[1], "y", 100000), rec(k6[2], NULL, 0)};
    vigil_store_record r7 = rec(k7, "z", 0);
    talert a;
    mk_alert(&a, "0000000000000000000000000000e001", k6[0]);
    vigil_redis_cmd o = fields(&a);
    vigil_redis_pair_commit pc[2] = {
        {.group_name = G, .partition = 6, .epoch = e6, .seq = 1, .wm = 1, .recs = r6, .nrecs = 3, .outbox = &o, .noutbox = 1},
        {.group_name = G, .partition = 7, .epoch = e7, .seq = 1, .wm = 1, .recs = &r7, .nrecs = 1},
    };
    vigil_pair_result res[2];
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, pc, 2, res, &err), VIGIL_OK);
    int seen = 0;
    long long deadline = vt_now_ms() + 3000;
    while (seen < 2 && vt_now_ms() < deadline) {
        void *rp = NULL;
        if (redisGetReply(mon, &rp) != REDIS_OK || !rp) break;
        redisReply *line = rp;
        static char args[64][300];
        int n = line->type == REDIS_REPLY_STATUS ? monitor_args(line->str, args, 64) : 0;
        if (n >= 3 && (!strcasecmp(args[0], "EVALSHA") || !strcasecmp(args[0], "EVAL"))) {
            int numkeys = atoi(args[2]);
            int part = -1;
            /* the pair's tag from the first key, then every key has it */
            const char *t = strchr(args[3], '{');
            if (t) sscanf(t, "{" G ":p%d}", &part);
            CU_ASSERT(part == 6 || part == 7);
            CU_ASSERT_EQUAL(numkeys, 3 + (part == 6 ? 3 : 1));
            char tag[64];
            snprintf(tag, sizeof tag, "{%s:p%d}", G, part);
            for (int i = 0; i < numkeys && 3 + i < n; i++) {
                const char *open = strchr(args[3 + i], '{'), *close = open ? strchr(open, '}') : NULL;
                CU_ASSERT_FATAL(open && close);
                CU_ASSERT_EQUAL((size_t)(close - open + 1), strlen(tag));
                CU_ASSERT(strncmp(open, tag, strlen(tag)) == 0);
            }
            CU_ASSERT(strstr(args[3], ":epoch") && strstr(args[4], ":offset") && strstr(args[5], ":outbox"));
            seen++;
        }
        freeReplyObject(line);
    }
    CU_ASSERT_EQUAL(seen, 2);
    redisFree(mon);
}

static void test_noscript_retried(void) {
    redisReply *r = redisCommand(direct, "SCRIPT FLUSH");
    CU_ASSERT(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    char k0[32], buf[64];
    key_in(0, "f", 0, k0, sizeof k0);
    uint64_t e = take_pair(0);
    vigil_store_record r0 = rec(k0, "after-flush", 0);
    vigil_redis_pair_commit pc = {.group_name = G, .partition = 0, .epoch = e, .seq = 3, .wm = 3, .recs = &r0, .nrecs = 1};
    vigil_pair_result res;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.status, VIGIL_OK);
    get_state(k0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "after-flush");
}

static void test_bad_input_sends_nothing(void) {
    char k1[32], buf[64];
    key_in(1, "w", 0, k1, sizeof k1);   /* a key of pair 1 … */
    vigil_store_record r0 = rec(k1, "wrong", 0);
    vigil_redis_pair_commit pc = {.group_name = G, .partition = 2, .epoch = 1, .seq = 50, .wm = 0, .recs = &r0, .nrecs = 1};
    vigil_pair_result res;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_EINVAL);   /* … in pair 2 */
    CU_ASSERT_EQUAL(res.status, VIGIL_EINVAL);
    CU_ASSERT(strstr(err.msg, "not in pair") != NULL);
    get_state(k1, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    pc.group_name = "bad{tag}";
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_EINVAL);
}

/* Out of memory: the pair's script writes nothing; once memory is back, it applies. */
static void test_oom_writes_nothing(void) {
    char k0[32], k1[32], buf[64], okey[256];
    key_in(7, "o", 0, k0, sizeof k0);
    key_in(7, "o", 1, k1, sizeof k1);
    uint64_t e = 0;
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_redis_store_epoch_get(st, G, 7, &e, &err), VIGIL_OK);
    long long before = xlen(G, 7);
    vigil_redis_pair_key("pc", G, 7, "offset", okey, sizeof okey);
    char off_before[64];
    get_raw(okey, off_before, sizeof off_before);
    vigil_store_record rs[2] = {rec(k0, NULL, 0), rec(k1, "v", 0)};   /* a DEL first: not refused by itself */
    talert a;
    mk_alert(&a, "0000000000000000000000000000f101", k1);
    vigil_redis_cmd o = fields(&a);
    vigil_redis_pair_commit pc = {.group_name = G, .partition = 7, .epoch = e, .seq = 777, .wm = 1,
                                  .recs = rs, .nrecs = 2, .outbox = &o, .noutbox = 1};
    vigil_pair_result res;
    redisReply *r = redisCommand(direct, "CONFIG SET maxmemory 1");
    freeReplyObject(r);
    vigil_error_clear(&err);
    vigil_status s = vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err);
    r = redisCommand(direct, "CONFIG SET maxmemory 0");
    freeReplyObject(r);
    CU_ASSERT_EQUAL(s, VIGIL_ESTORE);
    CU_ASSERT_EQUAL(res.status, VIGIL_ESTORE);
    CU_ASSERT(strstr(err.msg, "OOM") != NULL);
    get_state(k1, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    CU_ASSERT_EQUAL(xlen(G, 7), before);
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, off_before);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 0);
    get_state(k1, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "v");
    CU_ASSERT_EQUAL(xlen(G, 7), before + 1);
}

/* The outbox key is not a stream: refused before any write. */
static void test_wrongtype_writes_nothing(void) {
    char k0[32], buf[64], okey[256], skey[256];
    key_in(6, "q", 0, k0, sizeof k0);
    vigil_redis_pair_key("pc", G, 6, "outbox", skey, sizeof skey);
    vigil_redis_pair_key("pc", G, 6, "offset", okey, sizeof okey);
    redisReply *r = redisCommand(direct, "RENAME %s %s:saved", skey, skey);
    freeReplyObject(r);
    r = redisCommand(direct, "SET %s not-a-stream", skey);
    freeReplyObject(r);
    char off_before[64];
    get_raw(okey, off_before, sizeof off_before);
    uint64_t e = 0;
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_redis_store_epoch_get(st, G, 6, &e, &err), VIGIL_OK);
    vigil_store_record r0 = rec(k0, "never", 0);
    talert a;
    mk_alert(&a, "0000000000000000000000000000f201", k0);
    vigil_redis_cmd o = fields(&a);
    vigil_redis_pair_commit pc = {.group_name = G, .partition = 6, .epoch = e, .seq = 555, .wm = 1,
                                  .recs = &r0, .nrecs = 1, .outbox = &o, .noutbox = 1};
    vigil_pair_result res;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_ESTORE);
    CU_ASSERT(strstr(err.msg, "WRONGTYPE") != NULL);
    get_state(k0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "");
    get_raw(okey, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, off_before);
    r = redisCommand(direct, "RENAME %s:saved %s", skey, skey);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(res.already, 0);
}

static void test_connection_lost_then_retried(void) {
    char k0[32], buf[64];
    key_in(3, "u", 0, k0, sizeof k0);
    uint64_t e = 0;
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_redis_store_epoch_get(st, G, 3, &e, &err), VIGIL_OK);
    long long before = xlen(G, 3);
    redisReply *r = redisCommand(direct, "CLIENT KILL TYPE normal SKIPME yes");
    CU_ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer >= 1);
    freeReplyObject(r);
    vigil_store_record r0 = rec(k0, "once", 0);
    talert a;
    mk_alert(&a, "0000000000000000000000000000f001", k0);
    vigil_redis_cmd o = fields(&a);
    vigil_redis_pair_commit pc[2] = {
        {.group_name = G, .partition = 3, .epoch = e, .seq = 900, .wm = 9, .recs = &r0, .nrecs = 1, .outbox = &o, .noutbox = 1},
        {.group_name = G, .partition = 3, .epoch = e, .seq = 900, .wm = 9, .recs = &r0, .nrecs = 1, .outbox = &o, .noutbox = 1},
    };
    vigil_pair_result res[2];
    vigil_error_clear(&err);
    vigil_status s = vigil_redis_store_commit_pairs(st, pc, 1, res, &err);
    CU_ASSERT_EQUAL(s, VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(res[0].status, VIGIL_EUNAVAILABLE);
    /* the whole batch again: applied once (the same pair twice in one batch: the second is a retry) */
    CU_ASSERT_EQUAL(vigil_redis_store_commit_pairs(st, pc, 2, res, &err), VIGIL_OK);
    CU_ASSERT(res[0].status == VIGIL_OK && res[1].status == VIGIL_OK && res[1].already == 1);
    CU_ASSERT_EQUAL(xlen(G, 3), before + 1);
    get_state(k0, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "once");
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    dir = vt_tmpdir();
    if (!dir) return 1;
    for (int i = 0; i < 5 && !redis; i++) {
        port = low_port();
        if (port > 0) redis = vt_start_redis(&port, dir);
    }
    if (!redis) return 1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_redis_store_create(url, "pc", &st, &err) != VIGIL_OK || vigil_redis_store_set_partitions(st, P) != VIGIL_OK) {
        fprintf(stderr, "store: %s\n", err.msg);
        return 1;
    }
    direct = direct_connect();
    if (!direct || CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("pair commit", NULL, NULL);
    if (!s || !CU_add_test(s, "a commit applies state, offset and outbox of each pair", test_applies_each_pair) ||
        !CU_add_test(s, "a stale epoch applies nothing of its pair, the others apply", test_stale_pair_alone) ||
        !CU_add_test(s, "a retried commit is not applied twice", test_retry_not_twice) ||
        !CU_add_test(s, "every key of a pair's call has the pair's hash tag", test_every_key_has_the_pairs_tag) ||
        !CU_add_test(s, "NOSCRIPT: redone with EVAL", test_noscript_retried) ||
        !CU_add_test(s, "a record outside its pair: nothing sent", test_bad_input_sends_nothing) ||
        !CU_add_test(s, "out of memory: nothing of the pair written", test_oom_writes_nothing) ||
        !CU_add_test(s, "outbox key not a stream: nothing written", test_wrongtype_writes_nothing) ||
        !CU_add_test(s, "connection lost: unknown, the retry applies once", test_connection_lost_then_retried)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    st->destroy(st);
    redisFree(direct);
    vt_kill(redis, SIGTERM);
    free(dir);
    return fails != 0;
}
