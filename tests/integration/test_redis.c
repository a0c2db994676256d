/* test_redis.c — the server's one Redis connection layer (server/state/redis.h)
 * against a real redis-server.
 *
 * The state store and the outbox both reach Redis through this layer, so
 * what they rely on is checked here once: one round trip per pipeline,
 * error replies as VIGIL_ESTORE with their text, transport errors and
 * timeouts as VIGIL_EUNAVAILABLE followed by a reconnect on the next call,
 * AUTH and SELECT from the URL, the counters, and that no message ever
 * shows the password. The harness starts a throwaway redis-server on a free
 * loopback port; the test's own hiredis connection plays the operator. */
#include <CUnit/Basic.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redis.h"

#define SECRET "s3cr3t-Hunter2"

static char *dir;
static int port;
static vt_proc *redis;
static char url[128];
static redisContext *direct;

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
    struct timeval tv = { 2, 0 };
    direct = redisConnectWithTimeout("127.0.0.1", port, tv);
    return direct && !direct->err ? 0 : -1;
}

static int suite_clean(void)
{
    if (direct)
        redisFree(direct);
    vt_kill(redis, SIGTERM);
    free(dir);
    return 0;
}

static vigil_redis *open_ok(const char *u, const vigil_redis_opts *o)
{
    vigil_redis *r = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_create(u, o, &r, &err), VIGIL_OK);
    return r;
}

static void test_pipeline_one_round_trip(void)
{
    vigil_redis *r = open_ok(url, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_FALSE(vigil_redis_connected(r));   /* create does not connect */
    enum { N = 200 };
    static char keys[N][16], vals[N][16];
    static const char *av[N][3];
    static size_t al[N][3];
    vigil_redis_cmd cmds[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "pl:%d", i);
        snprintf(vals[i], sizeof vals[i], "v%d", i);
        av[i][0] = "SET"; al[i][0] = 3;
        av[i][1] = keys[i]; al[i][1] = strlen(keys[i]);
        av[i][2] = vals[i]; al[i][2] = strlen(vals[i]);
        cmds[i] = (vigil_redis_cmd){ 3, av[i], al[i] };
    }
    redisReply *rep[N];
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_redis_pipeline(r, cmds, N, rep, "set", &err), VIGIL_OK);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += rep[i]->type == REDIS_REPLY_STATUS && strcmp(rep[i]->str, "OK") == 0;
    CU_ASSERT_EQUAL(ok, N);
    vigil_redis_free_replies(rep, N);
    for (int i = 0; i < N; i++) {
        av[i][0] = "GET";
        cmds[i].argc = 2;
    }
    CU_ASSERT_EQUAL_FATAL(vigil_redis_pipeline(r, cmds, N, rep, "get", &err), VIGIL_OK);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += rep[i]->type == REDIS_REPLY_STRING && strcmp(rep[i]->str, vals[i]) == 0;
    CU_ASSERT_EQUAL(same, N);
    vigil_redis_free_replies(rep, N);
    vigil_redis_counters c;
    vigil_redis_get_counters(r, &c);
    CU_ASSERT_EQUAL(c.round_trips, 2);   /* 400 commands, 2 round trips; setup not counted */
    CU_ASSERT_EQUAL(c.connects, 1);
    CU_ASSERT_EQUAL(c.reconnects, 0);
    /* nothing appended: reading is refused instead of blocking */
    redisReply *none = NULL;
    CU_ASSERT_EQUAL(vigil_redis_read(r, &none, "nothing", &err), VIGIL_EINVAL);
    CU_ASSERT_PTR_NULL(none);
    vigil_redis_destroy(r);
}

static void test_error_reply_is_estore_and_stays_in_sync(void)
{
    vigil_redis *r = open_ok(url, NULL);
    const char *sv[] = { "SET", "wt:k", "x" };
    size_t sl[] = { 3, 4, 1 };
    const char *lv[] = { "LPUSH", "wt:k", "y" };   /* WRONGTYPE */
    size_t ll[] = { 5, 4, 1 };
    const char *pv[] = { "PING" };
    size_t pl[] = { 4 };
    vigil_redis_cmd cmds[3] = { { 3, sv, sl }, { 3, lv, ll }, { 1, pv, pl } };
    redisReply *rep[3];
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_redis_pipeline(r, cmds, 3, rep, "mixed", &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_redis_reply_check(r, rep[0], "SET", &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_redis_reply_check(r, rep[1], "LPUSH", &err), VIGIL_ESTORE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "WRONGTYPE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "LPUSH"));
    CU_ASSERT(vigil_redis_reply_is(rep[1], "WRONGTYPE"));
    CU_ASSERT_FALSE(vigil_redis_reply_is(rep[2], "WRONGTYPE"));
    CU_ASSERT(rep[2]->type == REDIS_REPLY_STATUS && strcmp(rep[2]->str, "PONG") == 0);
    vigil_redis_free_replies(rep, 3);
    CU_ASSERT(vigil_redis_connected(r));   /* an error reply keeps the connection */
    redisReply *one = NULL;
    CU_ASSERT_EQUAL(vigil_redis_command(r, &cmds[2], &one, "PING", &err), VIGIL_OK);
    CU_ASSERT(one && one->type == REDIS_REPLY_STATUS);
    if (one)
        freeReplyObject(one);
    vigil_redis_counters c;
    vigil_redis_get_counters(r, &c);
    CU_ASSERT_EQUAL(c.reconnects, 0);
    vigil_redis_destroy(r);
}

static void test_dropped_connection_reconnects(void)
{
    vigil_redis *r = open_ok(url, NULL);
    const char *pv[] = { "PING" };
    size_t pl[] = { 4 };
    vigil_redis_cmd ping = { 1, pv, pl };
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_redis_connect(r, &err), VIGIL_OK);
    redisReply *k = redisCommand(direct, "CLIENT KILL TYPE normal SKIPME yes");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    freeReplyObject(k);
    redisReply *rep = NULL;
    vigil_status s = vigil_redis_command(r, &ping, &rep, "PING", &err);
    CU_ASSERT_EQUAL(s, VIGIL_EUNAVAILABLE);   /* the killed socket: its error, no crash */
    CU_ASSERT_PTR_NULL(rep);
    CU_ASSERT_FALSE(vigil_redis_connected(r));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, vigil_redis_where(r)));
    /* the next call connects again */
    CU_ASSERT_EQUAL(vigil_redis_command(r, &ping, &rep, "PING", &err), VIGIL_OK);
    if (rep)
        freeReplyObject(rep);
    vigil_redis_counters c;
    vigil_redis_get_counters(r, &c);
    CU_ASSERT_EQUAL(c.connects, 2);
    CU_ASSERT_EQUAL(c.reconnects, 1);
    CU_ASSERT_EQUAL(c.failures, 1);
    vigil_redis_destroy(r);
}

static void test_timeout_is_unavailable_and_wait_extends_it(void)
{
    vigil_redis_opts o = { 1000, 200 };   /* 200 ms per call */
    vigil_redis *r = open_ok(url, &o);
    const char *bv[] = { "BLPOP", "to:empty", "1" };   /* blocks 1 s */
    size_t bl[] = { 5, 8, 1 };
    vigil_redis_cmd blpop = { 3, bv, bl };
    vigil_error err;
    vigil_error_clear(&err);
    redisReply *rep = NULL;
    CU_ASSERT_EQUAL(vigil_redis_command(r, &blpop, &rep, "BLPOP", &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_FALSE(vigil_redis_connected(r));
    vigil_redis_set_wait(r, 1000);   /* the next connection gets 200 + 1000 ms */
    CU_ASSERT_EQUAL(vigil_redis_command(r, &blpop, &rep, "BLPOP", &err), VIGIL_OK);
    CU_ASSERT(rep && rep->type == REDIS_REPLY_NIL);
    if (rep)
        freeReplyObject(rep);
    vigil_redis_set_wait(r, 0);
    vigil_redis_destroy(r);
}

static void test_unreachable(void)
{
    int closed = vt_free_port();
    char u[160];
    snprintf(u, sizeof u, "redis://:%s@127.0.0.1:%d/2", SECRET, closed);
    vigil_redis *r = open_ok(u, NULL);
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_connect(r, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT(err.msg[0] != '\0');
    CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    const char *pv[] = { "PING" };
    size_t pl[] = { 4 };
    vigil_redis_cmd ping = { 1, pv, pl };
    CU_ASSERT_EQUAL(vigil_redis_append(r, &ping, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(vigil_redis_ping(u, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    vigil_redis_destroy(r);
}

static void test_auth_and_select(void)
{
    redisReply *x = redisCommand(direct, "CONFIG SET requirepass %s", SECRET);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    freeReplyObject(x);
    char good[200], bad[200], none[200];
    snprintf(good, sizeof good, "redis://:%s@127.0.0.1:%d/3", SECRET, port);
    snprintf(bad, sizeof bad, "redis://default:wrong-%s@127.0.0.1:%d", SECRET, port);
    snprintf(none, sizeof none, "redis://127.0.0.1:%d", port);
    vigil_error err;

    vigil_redis *r = open_ok(bad, NULL);
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_connect(r, &err), VIGIL_ESTORE);   /* WRONGPASS */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "AUTH"));
    CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    vigil_redis_destroy(r);
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_ping(bad, &err), VIGIL_ESTORE);
    CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_ping(none, &err), VIGIL_ESTORE);   /* NOAUTH */
    CU_ASSERT_EQUAL(vigil_redis_ping(good, &err), VIGIL_OK);

    r = open_ok(good, NULL);
    vigil_redis *c2 = NULL;
    CU_ASSERT_EQUAL_FATAL(vigil_redis_clone(r, &c2, &err), VIGIL_OK);
    const char *sv[] = { "SET", "db3:k", "in-three" };
    size_t sl[] = { 3, 5, 8 };
    vigil_redis_cmd set = { 3, sv, sl };
    redisReply *rep = NULL;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL(vigil_redis_command(c2, &set, &rep, "SET", &err), VIGIL_OK);   /* the clone authenticates too */
    if (rep)
        freeReplyObject(rep);
    vigil_redis_destroy(c2);
    vigil_redis_destroy(r);
    x = redisCommand(direct, "SELECT 3");
    freeReplyObject(x);
    x = redisCommand(direct, "GET db3:k");
    CU_ASSERT(x && x->type == REDIS_REPLY_STRING && strcmp(x->str, "in-three") == 0);
    freeReplyObject(x);
    x = redisCommand(direct, "SELECT 0");
    freeReplyObject(x);

    x = redisCommand(direct, "CONFIG SET requirepass %s", "");
    CU_ASSERT_PTR_NOT_NULL(x);
    if (x)
        freeReplyObject(x);
}

static void test_url_errors_hide_the_password(void)
{
    static const char *const bad[] = {
        "redis://:" SECRET "@127.0.0.1:99999",
        "redis://user:" SECRET "@127.0.0.1:6379/db",
        "redis://:" SECRET "@[::1",
        "redis://:" SECRET "@127.0.0.1:6379?x=1",
        "http://:" SECRET "@127.0.0.1",
        "rediss://:" SECRET "@127.0.0.1",
        "redis://:pa/" SECRET "@127.0.0.1",   /* an unencoded '/' in the password */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        vigil_error err;
        vigil_error_clear(&err);
        CU_ASSERT_EQUAL(vigil_redis_url_parse(bad[i], NULL, 0, NULL, NULL, NULL, 0, NULL, 0, &err), VIGIL_EPARSE);
        CU_ASSERT(err.msg[0] != '\0');
        CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
        vigil_redis *r = NULL;
        CU_ASSERT_EQUAL(vigil_redis_create(bad[i], NULL, &r, &err), VIGIL_EPARSE);
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NULL(strstr(err.msg, SECRET));
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("redis", suite_init, suite_clean);
    CU_add_test(s, "pipeline: N commands, one round trip", test_pipeline_one_round_trip);
    CU_add_test(s, "error reply: ESTORE with its text, connection in sync", test_error_reply_is_estore_and_stays_in_sync);
    CU_add_test(s, "dropped connection: EUNAVAILABLE, then reconnect", test_dropped_connection_reconnects);
    CU_add_test(s, "timeout: EUNAVAILABLE; set_wait extends it", test_timeout_is_unavailable_and_wait_extends_it);
    CU_add_test(s, "unreachable server", test_unreachable);
    CU_add_test(s, "AUTH and SELECT from the URL", test_auth_and_select);
    CU_add_test(s, "URL errors never show the password", test_url_errors_hide_the_password);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures != 0;
}
