/* test_redis_store.c — the Redis state store against a real redis-server.
 *
 * The harness starts a throwaway redis-server on a free loopback port. The
 * store's writes are checked through a separate hiredis connection (key names,
 * values, TTLs), so the test sees what a later Redis Cluster migration or an
 * operator with redis-cli would see. Also: one round trip per call, deletes,
 * binary records, error replies, and a Redis restart in the middle (errors,
 * no crash, the next call reconnects). */
#include <CUnit/Basic.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis_store.h"

#define N 1000

static char *dir;
static int port;
static vt_proc *redis;
static char url[128];
static vigil_store *st;
static redisContext *direct;   /* the test's own view of the server */

static redisContext *direct_connect(void)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

static int suite_init(void)
{
    dir = vt_tmpdir();
    if (!dir)
        return -1;
    port = 0;
    redis = vt_start_redis(&port, dir);
    if (!redis)
        return -1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_redis_store_create(url, "vigil", &st, &err) != VIGIL_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        return -1;
    }
    direct = direct_connect();
    return direct ? 0 : -1;
}

static int suite_clean(void)
{
    if (st)
        st->destroy(st);
    st = NULL;
    if (direct)
        redisFree(direct);
    direct = NULL;
    vt_kill(redis, SIGTERM);
    redis = NULL;
    free(dir);
    return 0;
}

static vigil_redis_stats stats(void)
{
    vigil_redis_stats s;
    memset(&s, 0, sizeof s);
    CU_ASSERT_EQUAL(vigil_redis_store_stats(st, &s), VIGIL_OK);
    return s;
}

/* ---- records used by several tests ------------------------------------ */

static char keys_txt[N][16];
static char vals_txt[N][32];

static void make_records(vigil_store_record *recs, int n, const char *group)
{
    for (int i = 0; i < n; i++) {
        snprintf(keys_txt[i], sizeof keys_txt[i], "%d", i);
        int vl = snprintf(vals_txt[i], sizeof vals_txt[i], "state-%d-v1", i);
        memset(&recs[i], 0, sizeof recs[i]);
        recs[i].k.group = 0;
        recs[i].k.group_name = group;
        recs[i].k.key = keys_txt[i];
        recs[i].k.keylen = strlen(keys_txt[i]);
        recs[i].data = (const unsigned char *)vals_txt[i];
        recs[i].len = (size_t)vl;
        recs[i].ttl_ms = (i % 2 == 0) ? 60000 : 0;   /* even: expiring, odd: persistent */
    }
}

typedef struct seen {
    int count;
    int hits[N + 64];
    char data[N + 64][64];
    size_t len[N + 64];
} seen;

static void on_found(void *ud, int i, const unsigned char *data, size_t len)
{
    seen *s = ud;
    s->count++;
    if (i >= 0 && i < N + 64) {
        s->hits[i]++;
        s->len[i] = len;
        memcpy(s->data[i], data, len < 64 ? len : 64);
    }
}

/* ---- tests ------------------------------------------------------------- */

static void test_save_1000_visible_in_redis(void)
{
    static vigil_store_record recs[N];
    make_records(recs, N, "customer_id");
    vigil_redis_stats before = stats();
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = st->save(st, recs, N, &err);
    CU_ASSERT_EQUAL_FATAL(s, VIGIL_OK);
    vigil_redis_stats after = stats();
    CU_ASSERT_EQUAL(after.round_trips - before.round_trips, 1);
    CU_ASSERT_EQUAL(after.keys_saved - before.keys_saved, N);

    int bad_val = 0, bad_ttl = 0;
    for (int i = 0; i < N; i++) {
        /* The documented layout, spelled out by hand. */
        char key[64];
        snprintf(key, sizeof key, "vigil:{customer_id}:k:%d", i);
        redisReply *r = redisCommand(direct, "GET %s", key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        if (r->type != REDIS_REPLY_STRING || r->len != strlen(vals_txt[i]) ||
            memcmp(r->str, vals_txt[i], r->len) != 0)
            bad_val++;
        freeReplyObject(r);
        r = redisCommand(direct, "PTTL %s", key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        if (i % 2 == 0) {
            if (r->type != REDIS_REPLY_INTEGER || r->integer <= 50000 || r->integer > 60000)
                bad_ttl++;
        } else if (r->type != REDIS_REPLY_INTEGER || r->integer != -1) {
            bad_ttl++;
        }
        freeReplyObject(r);
    }
    CU_ASSERT_EQUAL(bad_val, 0);
    CU_ASSERT_EQUAL(bad_ttl, 0);

    redisReply *r = redisCommand(direct, "DBSIZE");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->integer, N);
    freeReplyObject(r);
}

static void test_load_found_and_absent(void)
{
    static vigil_store_key keys[N + 10];
    static char absent[10][16];
    for (int i = 0; i < N; i++) {
        keys[i].group = 0;
        keys[i].group_name = "customer_id";
        snprintf(keys_txt[i], sizeof keys_txt[i], "%d", i);
        keys[i].key = keys_txt[i];
        keys[i].keylen = strlen(keys_txt[i]);
    }
    for (int i = 0; i < 10; i++) {
        snprintf(absent[i], sizeof absent[i], "absent-%d", i);
        keys[N + i] = (vigil_store_key){ 0, "customer_id", absent[i], strlen(absent[i]) };
    }
    static seen sn;
    memset(&sn, 0, sizeof sn);
    vigil_redis_stats before = stats();
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(st->load(st, keys, N + 10, on_found, &sn, &err), VIGIL_OK);
    vigil_redis_stats after = stats();
    CU_ASSERT_EQUAL(after.round_trips - before.round_trips, 1);
    CU_ASSERT_EQUAL(after.keys_loaded - before.keys_loaded, N + 10);
    CU_ASSERT_EQUAL(after.keys_found - before.keys_found, N);
    CU_ASSERT_EQUAL(sn.count, N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        char want[32];
        int wl = snprintf(want, sizeof want, "state-%d-v1", i);
        if (sn.hits[i] != 1 || sn.len[i] != (size_t)wl || memcmp(sn.data[i], want, (size_t)wl) != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(sn.hits[N + i], 0);

    /* The same key value in another group is another key. */
    vigil_store_key other = { 1, "terminal_id", "5", 1 };
    memset(&sn, 0, sizeof sn);
    CU_ASSERT_EQUAL(st->load(st, &other, 1, on_found, &sn, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(sn.count, 0);
}

static void test_delete_with_null_data(void)
{
    vigil_store_record recs[10];
    static char k[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(k[i], sizeof k[i], "%d", i);
        recs[i] = (vigil_store_record){ { 0, "customer_id", k[i], strlen(k[i]) }, NULL, 0, 0 };
    }
    vigil_redis_stats before = stats();
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(st->save(st, recs, 10, &err), VIGIL_OK);
    vigil_redis_stats after = stats();
    CU_ASSERT_EQUAL(after.round_trips - before.round_trips, 1);
    CU_ASSERT_EQUAL(after.keys_deleted - before.keys_deleted, 10);
    for (int i = 0; i < 10; i++) {
        redisReply *r = redisCommand(direct, "EXISTS vigil:{customer_id}:k:%d", i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_EQUAL(r->integer, 0);
        freeReplyObject(r);
    }
    redisReply *r = redisCommand(direct, "EXISTS vigil:{customer_id}:k:10");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->integer, 1);   /* neighbours untouched */
    freeReplyObject(r);

    vigil_store_key keys[11];
    for (int i = 0; i < 10; i++)
        keys[i] = recs[i].k;
    keys[10] = (vigil_store_key){ 0, "customer_id", "10", 2 };
    static seen sn;
    memset(&sn, 0, sizeof sn);
    CU_ASSERT_EQUAL(st->load(st, keys, 11, on_found, &sn, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(sn.count, 1);
    CU_ASSERT_EQUAL(sn.hits[10], 1);

    /* Deleting an absent key is fine; a mixed batch of SET and DEL works. */
    vigil_store_record mix[2] = {
        { { 0, "customer_id", "nope", 4 }, NULL, 0, 0 },
        { { 0, "customer_id", "0", 1 }, (const unsigned char *)"back", 4, 0 },
    };
    CU_ASSERT_EQUAL(st->save(st, mix, 2, &err), VIGIL_OK);
    r = redisCommand(direct, "GET vigil:{customer_id}:k:0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->type, REDIS_REPLY_STRING);
    if (r->type == REDIS_REPLY_STRING)
        CU_ASSERT_NSTRING_EQUAL(r->str, "back", 4);
    freeReplyObject(r);
}

typedef struct bin_got {
    int n;
    unsigned char buf[512];
    size_t len;
    int empty_seen;
} bin_got;

static void on_binary(void *ud, int i, const unsigned char *d, size_t len)
{
    bin_got *g = ud;
    g->n++;
    if (i == 0 && len <= sizeof g->buf) {
        memcpy(g->buf, d, len);
        g->len = len;
    }
    if (i == 1 && len == 0)
        g->empty_seen = 1;
}

static void test_binary_roundtrip(void)
{
    unsigned char data[512];
    for (int i = 0; i < 512; i++)
        data[i] = (unsigned char)(i % 256);   /* every byte value, NULs included */
    const char key[] = { 'a', '\0', 'b', '\r', '\n', '}' };
    vigil_store_record rec = { { 0, "card_id", key, sizeof key }, data, sizeof data, 0 };
    vigil_store_record empty = { { 0, "card_id", "empty", 5 }, (const unsigned char *)"", 0, 0 };
    vigil_store_record recs[2] = { rec, empty };
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(st->save(st, recs, 2, &err), VIGIL_OK);

    /* Exact bytes in Redis under the binary key. */
    char rk[64];
    size_t rkl = 0;
    CU_ASSERT_EQUAL_FATAL(vigil_redis_store_key(st, "card_id", key, sizeof key, rk, sizeof rk, &rkl),
                          VIGIL_OK);
    CU_ASSERT_EQUAL(rkl, strlen("vigil:{card_id}:k:") + sizeof key);
    CU_ASSERT_EQUAL(memcmp(rk, "vigil:{card_id}:k:a\0b\r\n}", rkl), 0);
    redisReply *r = redisCommand(direct, "GET %b", rk, rkl);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->type, REDIS_REPLY_STRING);
    CU_ASSERT_EQUAL(r->len, sizeof data);
    if (r->type == REDIS_REPLY_STRING && r->len == sizeof data)
        CU_ASSERT_EQUAL(memcmp(r->str, data, sizeof data), 0);
    freeReplyObject(r);

    /* And back through load(). */
    static bin_got got;
    memset(&got, 0, sizeof got);
    vigil_store_key keys[2] = { rec.k, empty.k };
    CU_ASSERT_EQUAL(st->load(st, keys, 2, on_binary, &got, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(got.n, 2);
    CU_ASSERT_EQUAL(got.len, sizeof data);
    CU_ASSERT_EQUAL(memcmp(got.buf, data, sizeof data), 0);
    CU_ASSERT_EQUAL(got.empty_seen, 1);
}

static void test_no_round_trip_for_nothing(void)
{
    vigil_redis_stats before = stats();
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(st->save(st, NULL, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(st->load(st, NULL, 0, on_found, NULL, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(stats().round_trips, before.round_trips);
}

static void test_bad_input_rejected_without_io(void)
{
    vigil_redis_stats before = stats();
    vigil_error err;
    vigil_error_clear(&err);
    vigil_store_record good = { { 0, "customer_id", "g", 1 }, (const unsigned char *)"x", 1, 0 };
    vigil_store_record bad = { { 0, "cust{omer", "1", 1 }, (const unsigned char *)"x", 1, 0 };
    vigil_store_record both[2] = { good, bad };
    CU_ASSERT_EQUAL(st->save(st, both, 2, &err), VIGIL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "hash tag"));
    vigil_store_record neg = good;
    neg.ttl_ms = -5;
    CU_ASSERT_EQUAL(st->save(st, &neg, 1, &err), VIGIL_EINVAL);
    vigil_store_record nodata = good;
    nodata.data = NULL;
    nodata.len = 3;
    CU_ASSERT_EQUAL(st->save(st, &nodata, 1, &err), VIGIL_EINVAL);
    static char huge[VIGIL_REDIS_MAX_KEY + 1];
    memset(huge, 'h', sizeof huge);
    vigil_store_key hk = { 0, "customer_id", huge, sizeof huge };
    CU_ASSERT_EQUAL(st->load(st, &hk, 1, on_found, NULL, &err), VIGIL_ETOOBIG);
    vigil_redis_stats after = stats();
    CU_ASSERT_EQUAL(after.round_trips, before.round_trips);

    /* Nothing of the rejected batch was written; the connection still works. */
    redisReply *r = redisCommand(direct, "EXISTS vigil:{customer_id}:k:g");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->integer, 0);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(st->save(st, &good, 1, &err), VIGIL_OK);
}

static void test_error_reply_keeps_connection_in_sync(void)
{
    /* A key of the wrong type: GET answers WRONGTYPE. */
    redisReply *r = redisCommand(direct, "RPUSH vigil:{customer_id}:k:list x");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    freeReplyObject(r);
    vigil_store_key keys[3] = {   /* 11 and 13 exist (0..9 were deleted above) */
        { 0, "customer_id", "11", 2 },
        { 0, "customer_id", "list", 4 },
        { 0, "customer_id", "13", 2 },
    };
    static seen sn;
    memset(&sn, 0, sizeof sn);
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(st->load(st, keys, 3, on_found, &sn, &err), VIGIL_ESTORE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "WRONGTYPE"));
    CU_ASSERT_EQUAL(sn.count, 0);   /* on error the callback is never called */
    /* The next call reads its own replies, not leftovers. */
    memset(&sn, 0, sizeof sn);
    vigil_store_key ok[2] = { keys[0], keys[2] };
    CU_ASSERT_EQUAL(st->load(st, ok, 2, on_found, &sn, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(sn.count, 2);
    CU_ASSERT_NSTRING_EQUAL(sn.data[0], "state-11-v1", 11);
    CU_ASSERT_NSTRING_EQUAL(sn.data[1], "state-13-v1", 11);
    r = redisCommand(direct, "DEL vigil:{customer_id}:k:list");
    freeReplyObject(r);
}

static void test_prefix_and_db(void)
{
    char u[160];
    snprintf(u, sizeof u, "redis://127.0.0.1:%d/3", port);
    vigil_store *s3 = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_redis_store_create(u, "tst", &s3, &err), VIGIL_OK);
    vigil_store_record rec = { { 0, "terminal_id", "42", 2 }, (const unsigned char *)"t", 1, 1000 };
    CU_ASSERT_EQUAL(s3->save(s3, &rec, 1, &err), VIGIL_OK);
    redisContext *c = direct_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    redisReply *r = redisCommand(c, "SELECT 3");
    freeReplyObject(r);
    r = redisCommand(c, "GET tst:{terminal_id}:k:42");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    redisFree(c);
    r = redisCommand(direct, "EXISTS tst:{terminal_id}:k:42");   /* not in db 0 */
    CU_ASSERT_EQUAL(r->integer, 0);
    freeReplyObject(r);
    s3->destroy(s3);

    CU_ASSERT_EQUAL(vigil_redis_store_create(u, "bad{prefix", &s3, &err), VIGIL_EINVAL);
    CU_ASSERT_PTR_NULL(s3);
}

static void test_url_parse(void)
{
    char host[64], user[32], pass[32];
    int p = 0, db = 0;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_url_parse("redis://localhost", host, sizeof host, &p, &db, user,
                                          sizeof user, pass, sizeof pass, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(host, "localhost");
    CU_ASSERT_EQUAL(p, 6379);
    CU_ASSERT_EQUAL(db, 0);
    CU_ASSERT_STRING_EQUAL(pass, "");
    CU_ASSERT_EQUAL(vigil_redis_url_parse("redis://u:p%40ss@10.0.0.1:7000/2", host, sizeof host, &p,
                                          &db, user, sizeof user, pass, sizeof pass, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(host, "10.0.0.1");
    CU_ASSERT_EQUAL(p, 7000);
    CU_ASSERT_EQUAL(db, 2);
    CU_ASSERT_STRING_EQUAL(user, "u");
    CU_ASSERT_STRING_EQUAL(pass, "p@ss");
    CU_ASSERT_EQUAL(vigil_redis_url_parse("redis://:secret@[::1]:6380/", host, sizeof host, &p, &db,
                                          user, sizeof user, pass, sizeof pass, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(host, "::1");
    CU_ASSERT_EQUAL(p, 6380);
    CU_ASSERT_STRING_EQUAL(user, "");
    CU_ASSERT_STRING_EQUAL(pass, "secret");
    CU_ASSERT_EQUAL(vigil_redis_url_parse("127.0.0.1:6390", host, sizeof host, &p, NULL, NULL, 0,
                                          NULL, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(p, 6390);
    const char *bad[] = { "", "http://x", "rediss://x", "redis://", "redis://h:0", "redis://h:70000",
                          "redis://h:12x", "redis://h/db", "redis://h?x=1", "redis://[::1", NULL };
    for (int i = 0; bad[i]; i++) {
        vigil_error_clear(&err);
        CU_ASSERT_EQUAL(vigil_redis_url_parse(bad[i], host, sizeof host, &p, &db, NULL, 0, NULL, 0,
                                              &err), VIGIL_EPARSE);
        CU_ASSERT(err.msg[0] != '\0');
    }
}

static void test_ping(void)
{
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_ping(url, &err), VIGIL_OK);
    int unused = vt_free_port();
    char u[64];
    snprintf(u, sizeof u, "redis://127.0.0.1:%d", unused);
    CU_ASSERT_EQUAL(vigil_redis_ping(u, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT(err.msg[0] != '\0');
    CU_ASSERT_EQUAL(vigil_redis_ping("nope://x", &err), VIGIL_EPARSE);
    vigil_store *s2 = NULL;
    CU_ASSERT_EQUAL(vigil_redis_store_create(u, NULL, &s2, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_PTR_NULL(s2);
}

static void test_big_batch_one_round_trip(void)
{
    enum { BIG = 50000 };
    vigil_store_record *recs = calloc(BIG, sizeof *recs);
    vigil_store_key *keys = calloc(BIG, sizeof *keys);
    char (*kt)[16] = calloc(BIG, 16);
    CU_ASSERT_PTR_NOT_NULL_FATAL(recs);
    CU_ASSERT_PTR_NOT_NULL_FATAL(keys);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kt);
    static const unsigned char blob[200] = { 1, 2, 3 };
    for (int i = 0; i < BIG; i++) {
        snprintf(kt[i], 16, "b%d", i);
        keys[i] = (vigil_store_key){ 2, "email", kt[i], strlen(kt[i]) };
        recs[i] = (vigil_store_record){ keys[i], blob, sizeof blob, 3600000 };
    }
    vigil_redis_stats before = stats();
    vigil_error err;
    vigil_error_clear(&err);
    long long t0 = vt_now_ms();
    CU_ASSERT_EQUAL(st->save(st, recs, BIG, &err), VIGIL_OK);
    static seen sn;
    memset(&sn, 0, sizeof sn);
    CU_ASSERT_EQUAL(st->load(st, keys, BIG, on_found, &sn, &err), VIGIL_OK);
    long long t1 = vt_now_ms();
    CU_ASSERT_EQUAL(sn.count, BIG);
    vigil_redis_stats after = stats();
    CU_ASSERT_EQUAL(after.round_trips - before.round_trips, 2);
    printf("\n    50k records: save + load in %lld ms, 2 round trips ", t1 - t0);
    /* Clean up in one call too. */
    for (int i = 0; i < BIG; i++) {
        recs[i].data = NULL;
        recs[i].len = 0;
    }
    CU_ASSERT_EQUAL(st->save(st, recs, BIG, &err), VIGIL_OK);
    free(recs);
    free(keys);
    free(kt);
}

static void test_redis_restart(void)
{
    vigil_store_record rec = { { 0, "customer_id", "r1", 2 }, (const unsigned char *)"before", 6, 0 };
    vigil_store_key key = rec.k;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(st->save(st, &rec, 1, &err), VIGIL_OK);

    vt_kill(redis, SIGKILL);
    redis = NULL;
    redisFree(direct);
    direct = NULL;

    vigil_redis_stats before = stats();
    vigil_error_clear(&err);
    rec.data = (const unsigned char *)"during";
    vigil_status s = st->save(st, &rec, 1, &err);
    CU_ASSERT_EQUAL(s, VIGIL_EUNAVAILABLE);
    CU_ASSERT(err.msg[0] != '\0');
    printf("\n    save with Redis down: %s: %s ", vigil_status_str(s), err.msg);
    static seen sn;
    memset(&sn, 0, sizeof sn);
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(st->load(st, &key, 1, on_found, &sn, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(sn.count, 0);
    CU_ASSERT_EQUAL(vigil_redis_ping(url, &err), VIGIL_EUNAVAILABLE);
    /* Again: still an error, still no crash. */
    CU_ASSERT_EQUAL(st->save(st, &rec, 1, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT(stats().errors >= before.errors + 3);

    redis = vt_start_redis(&port, dir);   /* same port: the store's URL */
    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    direct = direct_connect();
    CU_ASSERT_PTR_NOT_NULL_FATAL(direct);
    CU_ASSERT_EQUAL(vigil_redis_ping(url, &err), VIGIL_OK);

    rec.data = (const unsigned char *)"after!";
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(st->save(st, &rec, 1, &err), VIGIL_OK);
    memset(&sn, 0, sizeof sn);
    CU_ASSERT_EQUAL(st->load(st, &key, 1, on_found, &sn, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(sn.count, 1);
    CU_ASSERT_NSTRING_EQUAL(sn.data[0], "after!", 6);
    CU_ASSERT(stats().reconnects >= 1);
}

static void test_connection_dropped_by_server(void)
{
    /* The server closes our connection (CLIENT KILL): the next call fails
     * or transparently reconnects, and the one after that works. */
    redisReply *r = redisCommand(direct, "CLIENT KILL TYPE normal SKIPME yes");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    freeReplyObject(r);
    vigil_store_record rec = { { 0, "customer_id", "k1", 2 }, (const unsigned char *)"v", 1, 0 };
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = st->save(st, &rec, 1, &err);
    CU_ASSERT(s == VIGIL_OK || s == VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(st->save(st, &rec, 1, &err), VIGIL_OK);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("redis_store", suite_init, suite_clean);
    CU_add_test(s, "save 1000 records: keys, values, TTLs in Redis", test_save_1000_visible_in_redis);
    CU_add_test(s, "load: found and absent, one round trip", test_load_found_and_absent);
    CU_add_test(s, "DEL via data == NULL", test_delete_with_null_data);
    CU_add_test(s, "binary keys and records round-trip", test_binary_roundtrip);
    CU_add_test(s, "n == 0 makes no round trip", test_no_round_trip_for_nothing);
    CU_add_test(s, "bad input rejected before any I/O", test_bad_input_rejected_without_io);
    CU_add_test(s, "error reply: ESTORE, connection stays in sync", test_error_reply_keeps_connection_in_sync);
    CU_add_test(s, "prefix and database from the URL", test_prefix_and_db);
    CU_add_test(s, "URL parsing", test_url_parse);
    CU_add_test(s, "ping and unreachable server", test_ping);
    CU_add_test(s, "50k records, one round trip per call", test_big_batch_one_round_trip);
    CU_add_test(s, "connection closed by the server", test_connection_dropped_by_server);
    CU_add_test(s, "Redis killed and restarted", test_redis_restart);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures != 0;
}
