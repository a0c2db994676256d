/* test_cluster_hooks.c — the control wing's cluster hooks and its periodic
 * check, in one process without NATS (issue 14, helper h10; control.h
 * "cluster mode"): two control wings (instances t1 and t2) over one real
 * redis-server (a loopback port below 32768), each behind its own HTTP edge.
 *
 *  1. t1 has hooks written here, standing in for the cluster wing's members
 *     entries: publish_versions gets {"<rule>": <version>} after start and
 *     after each change; GET /v1/rules shows read_versions' answer as
 *     "instances" ({"t1":1,"other":7,"idle":null}: a member without the rule
 *     is null);
 *  2. t2 has no hooks and no NATS: a PUT on t1 reaches t2 by the periodic
 *     check alone within 3 s (no notice seen), with one audit entry; t2
 *     shows no "instances" (without hooks no instance's versions are known);
 *  3. a change made on t2 while t2 still runs an older generation than the
 *     store's cannot happen: t2 catches up first (the store's generation
 *     decides), so its PUT is the next version;
 *  4. a shadow started on t1 gets a compare on t2; promoted on t1, t2's goes. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "server/control/control.h"
#include "server/http/http.h"

static char *dir, rurl[64];
static vt_proc *redis;

typedef struct inst {
    vigil_control *ctl;
    vigil_http *http;
    char base[64];
} inst;
static inst T1, T2;

/* ---- the hooks t1 uses: what the cluster wing's members entries would hold ----------- */

static pthread_mutex_t hk_mu = PTHREAD_MUTEX_INITIALIZER;
static char *published;   /* the latest publish_versions json */
static int npublished, wrong_ud;

static void hk_publish(void *ud, const char *json) {   /* the wing's thread: no CU_ASSERT here */
    pthread_mutex_lock(&hk_mu);
    wrong_ud += ud != &T1;
    free(published);
    published = strdup(json);
    npublished++;
    pthread_mutex_unlock(&hk_mu);
}

static cJSON *hk_read(void *ud) {
    (void)ud;
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&hk_mu);
    cJSON *self = published ? cJSON_Parse(published) : NULL;
    pthread_mutex_unlock(&hk_mu);
    if (self) cJSON_AddItemToObject(o, "t1", self);
    cJSON *other = cJSON_AddObjectToObject(o, "other");
    cJSON_AddNumberToObject(other, "big", 7);
    cJSON_AddObjectToObject(o, "idle");   /* a member that runs no rule */
    return o;
}

static char *last_published(void) {
    pthread_mutex_lock(&hk_mu);
    char *s = published ? strdup(published) : NULL;
    pthread_mutex_unlock(&hk_mu);
    return s;
}

/* ---- helpers -------------------------------------------------------------------------- */

static int low_port(void) {
    static unsigned seed;
    if (!seed) seed = (unsigned)getpid() * 2246822519u;
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

static int start(inst *t, const char *name, const vigil_control_cluster_hooks *hooks) {
    char rules[600], listen[64];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    vigil_control_config cc = {.rules = rules, .redis_url = rurl, .redis_prefix = "hk", .instance = name};
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_control_create(&cc, &t->ctl, &err) != VIGIL_OK) {
        fprintf(stderr, "control %s: %s\n", name, err.msg);
        return -1;
    }
    if (hooks) vigil_control_set_cluster_hooks(t->ctl, hooks);
    vigil_control_start(t->ctl, NULL, NULL, NULL);   /* no router: the catalog and the API only */
    if (vigil_control_cluster_start(t->ctl, NULL, &err) != VIGIL_OK) return -1;
    snprintf(listen, sizeof listen, "127.0.0.1:%d", low_port());
    if (vigil_http_create(listen, 1 << 20, &t->http, &err) != VIGIL_OK) return -1;
    vigil_control_register(t->ctl, t->http);
    if (vigil_http_start(t->http, &err) != VIGIL_OK) {
        fprintf(stderr, "http %s: %s\n", name, err.msg);
        return -1;
    }
    snprintf(t->base, sizeof t->base, "http://127.0.0.1:%d", vigil_http_port(t->http));
    return 0;
}

static void stop(inst *t) {
    vigil_http_destroy(t->http);
    vigil_control_destroy(t->ctl);
}

static cJSON *get_rule(const inst *t, const char *name) {
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/rules/%s", t->base, name);
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    cJSON *o = st == 200 && body ? cJSON_Parse(body) : NULL;
    free(body);
    return o;
}

static int version_of(const inst *t, const char *name) {
    cJSON *o = get_rule(t, name);
    int v = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "version"));
    cJSON_Delete(o);
    return v;
}

static long put_rule(const inst *t, const char *name, const char *src) {
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/rules/%s", t->base, name);
    free(vt_http("PUT", url, src, strlen(src), "text/x-lua", &st));
    return st;
}

/* ---- tests ---------------------------------------------------------------------------- */

static const char *V1 = "rule { name = \"big\", key = \"card\", where = { amount = gt(500) }, window = sliding(\"1m\"), when = ge(count(), 1) }\n";
static const char *V2 = "rule { name = \"big\", key = \"card\", where = { amount = gt(400) }, window = sliding(\"1m\"), when = ge(count(), 1) }\n";
static const char *V3 = "rule { name = \"big\", key = \"card\", where = { amount = gt(300) }, window = sliding(\"1m\"), when = ge(count(), 1) }\n";

static void test_hooks(void) {
    long long t0 = vt_now_ms();
    char *p = NULL;
    while (!(p = last_published()) && vt_now_ms() - t0 < 3000) vt_sleep_ms(20);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(wrong_ud, 0);
    cJSON *pj = cJSON_Parse(p);
    CU_ASSERT_EQUAL((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(pj, "big")), 1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(pj), 1);
    cJSON_Delete(pj);
    free(p);
    cJSON *r = get_rule(&T1, "big");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(r, "instances");
    char *txt = cJSON_PrintUnformatted(in);
    printf("  instances on t1: %s\n", txt ? txt : "(none)");
    free(txt);
    CU_ASSERT_EQUAL((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in, "t1")), 1);
    CU_ASSERT_EQUAL((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(in, "other")), 7);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(in, "idle")));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(in), 3);
    cJSON_Delete(r);
}

static void test_periodic_without_nats(void) {
    int before = npublished;
    CU_ASSERT_EQUAL(put_rule(&T1, "big", V2), 200);
    long long t0 = vt_now_ms();
    int v = 0;
    while ((v = version_of(&T2, "big")) != 2 && vt_now_ms() - t0 < 3000) vt_sleep_ms(50);
    printf("  t2 runs version %d %lld ms after the PUT on t1 (no NATS)\n", v, vt_now_ms() - t0);
    CU_ASSERT_EQUAL(v, 2);
    vigil_control_stats s1, s2;
    vigil_control_get_stats(T1.ctl, &s1);
    vigil_control_get_stats(T2.ctl, &s2);
    CU_ASSERT(s2.clustered && s1.clustered);
    CU_ASSERT_EQUAL(s2.generation, s1.generation);
    CU_ASSERT_EQUAL(s2.cluster_syncs, 1);
    CU_ASSERT_EQUAL(s2.notices_seen, 0);
    CU_ASSERT_EQUAL(s1.notices_sent, 0);   /* no NATS: nothing sent */
    /* t1's hook got the new version; t2 has no hooks: it shows no instances */
    t0 = vt_now_ms();
    while (npublished == before && vt_now_ms() - t0 < 3000) vt_sleep_ms(20);
    char *p = last_published();
    CU_ASSERT(p && strstr(p, "\"big\":2"));
    free(p);
    cJSON *r = get_rule(&T2, "big");
    CU_ASSERT_PTR_NOT_NULL(r);
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItemCaseSensitive(r, "instances"));
    cJSON_Delete(r);
}

static void test_change_on_a_behind_instance(void) {
    /* t2 is at the store's generation now; t1 changes again, and t2 is asked for a
       change at once, before its periodic check: it catches up first */
    CU_ASSERT_EQUAL(put_rule(&T1, "big", V3), 200);
    CU_ASSERT_EQUAL(put_rule(&T2, "big", V1), 200);
    CU_ASSERT_EQUAL(version_of(&T2, "big"), 4);   /* on top of t1's version 3 */
    long long t0 = vt_now_ms();
    while (version_of(&T1, "big") != 4 && vt_now_ms() - t0 < 3000) vt_sleep_ms(50);
    CU_ASSERT_EQUAL(version_of(&T1, "big"), 4);
    vigil_control_stats s1, s2;
    vigil_control_get_stats(T1.ctl, &s1);
    vigil_control_get_stats(T2.ctl, &s2);
    CU_ASSERT_EQUAL(s1.sync_conflicts + s2.sync_conflicts, 0);
}

static long get_status(const inst *t, const char *path, cJSON **out) {
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s%s", t->base, path);
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    if (out) *out = body ? cJSON_Parse(body) : NULL;
    free(body);
    return st;
}

static void test_shadow_compare_follows(void) {
    const char *sh = "rule { name = \"big\", key = \"card\", where = { amount = gt(100) }, window = sliding(\"1m\"), when = ge(count(), 1) }\n";
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/rules/big?mode=shadow", T1.base);
    free(vt_http("PUT", url, sh, strlen(sh), "text/x-lua", &st));
    CU_ASSERT_EQUAL(st, 200);
    long long t0 = vt_now_ms();
    cJSON *o = NULL;
    while ((st = get_status(&T2, "/v1/rules/big/compare", &o)) != 200 && vt_now_ms() - t0 < 3000) {
        cJSON_Delete(o);
        o = NULL;
        vt_sleep_ms(50);
    }
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "shadow_version")), 5);
    CU_ASSERT_EQUAL((int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "active_version")), 4);
    cJSON_Delete(o);
    /* promoted on t1: t2's compare goes */
    snprintf(url, sizeof url, "%s/v1/rules/big/promote", T1.base);
    free(vt_http("POST", url, "", 0, "application/json", &st));
    CU_ASSERT_EQUAL(st, 200);
    t0 = vt_now_ms();
    while ((st = get_status(&T2, "/v1/rules/big/compare", NULL)) != 404 && vt_now_ms() - t0 < 3000) vt_sleep_ms(50);
    CU_ASSERT_EQUAL(st, 404);
    CU_ASSERT_EQUAL(version_of(&T2, "big"), 5);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
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
    int port = low_port();
    if (!(redis = vt_start_redis(&port, dir))) return 1;
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d", port);
    vigil_control_cluster_hooks hooks = {.publish_versions = hk_publish, .read_versions = hk_read, .ud = &T1};
    if (start(&T1, "t1", &hooks) != 0 || start(&T2, "t2", NULL) != 0) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("control: cluster hooks and the periodic check (issue 14)", NULL, NULL);
    if (!su || !CU_add_test(su, "the hooks: versions published, instances shown", test_hooks) ||
        !CU_add_test(su, "no NATS: the periodic check alone spreads a change", test_periodic_without_nats) ||
        !CU_add_test(su, "a change on an instance behind the store applies on top", test_change_on_a_behind_instance) ||
        !CU_add_test(su, "a shadow started and promoted on t1: t2's compare follows", test_shadow_compare_follows)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    stop(&T1);
    stop(&T2);
    vt_kill(redis, SIGTERM);
    free(published);
    free(dir);
    return failures != 0;
}
