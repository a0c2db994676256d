/* test_hub.c — CUnit tests for the alert hub (api/hub.c).
 *
 * The hub is what the dashboard and other HTTP viewers read alerts from, so
 * it is tested through a real libmicrohttpd daemon on a loopback port (a tiny
 * access handler routes to the hub's handlers, as the server's router does)
 * and a real HTTP client (libcurl): the list endpoint and its filters, the
 * SSE stream (live delivery in order, resume with Last-Event-ID, keepalive,
 * frames larger than MHD's buffer, clean shutdown with open streams), the
 * static assets, concurrent publishers, and that an idle open stream does
 * not make MHD spin (process CPU time over one idle second < 0.2 s). */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "hub.h"
#include "ops.h"

/* ---- a tiny server -------------------------------------------------------- */

struct server {
    struct MHD_Daemon *d;
    vigil_hub *hub;
    int port;
};

static enum MHD_Result route(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version,
                             const char *upload_data, size_t *upload_size, void **con_cls)
{
    struct server *srv = cls;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_size != 0 || strcmp(method, "GET") != 0)
        return MHD_NO;
    if (strcmp(url, "/v1/alerts") == 0)
        return vigil_hub_handle_list(srv->hub, conn);
    if (strcmp(url, "/v1/alerts/stream") == 0)
        return vigil_hub_handle_stream(srv->hub, conn);
    return vigil_ops_handle_asset(NULL, conn, url, NULL);
}

/* The daemon's polling mode: the streaming tests run once per mode that the
 * server might use (set by the suite's init function). */
static unsigned int g_poll_flag = MHD_USE_EPOLL_LINUX_ONLY;
static unsigned int g_pool = 0;

static int server_start(struct server *srv, size_t cap)
{
    memset(srv, 0, sizeof *srv);
    if (vigil_hub_create(cap, &srv->hub) != VIGIL_OK)
        return -1;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_CONNECTION_TIMEOUT, 1, NULL},
        {g_pool ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)g_pool, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | g_poll_flag |
                                  MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
                              0, NULL, NULL, route, srv,
                              MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!srv->d)
        return -1;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : 0;
    return srv->port > 0 ? 0 : -1;
}

static void server_stop(struct server *srv)
{
    vigil_hub_close(srv->hub);
    if (srv->d)
        MHD_stop_daemon(srv->d);
    vigil_hub_destroy(srv->hub);
    memset(srv, 0, sizeof *srv);
}

/* Publish a small alert; no CUnit calls (CUnit is not thread-safe). */
static vigil_status publish_raw(vigil_hub *hub, const char *id, const char *rule,
                                const char *sev, const char *key, int64_t ts)
{
    char json[512];
    int n = snprintf(json, sizeof json,
                     "{\"id\":\"%s\",\"rule\":\"%s\",\"severity\":\"%s\",\"mode\":\"active\","
                     "\"key_field\":\"card_id\",\"key\":\"%s\",\"ts\":%lld,\"events\":[\"e-%s\"],"
                     "\"event\":\"e-%s\",\"evidence\":[{\"id\":\"e-%s\"}],\"details\":{}}",
                     id, rule, sev, key, (long long)ts, id, id, id);
    if (n <= 0 || (size_t)n >= sizeof json)
        return VIGIL_ETOOBIG;
    return vigil_hub_publish(hub, json, (size_t)n, rule, sev, key, ts);
}

static void publish(vigil_hub *hub, const char *id, const char *rule, const char *sev,
                    const char *key, int64_t ts)
{
    CU_ASSERT_EQUAL(publish_raw(hub, id, rule, sev, key, ts), VIGIL_OK);
}

/* ---- HTTP client helpers -------------------------------------------------- */

struct body {
    char *p;
    size_t len;
};

static size_t collect(char *data, size_t sz, size_t n, void *ud)
{
    struct body *b = ud;
    char *np = realloc(b->p, b->len + sz * n + 1);
    if (!np)
        return 0;
    b->p = np;
    memcpy(b->p + b->len, data, sz * n);
    b->len += sz * n;
    b->p[b->len] = '\0';
    return sz * n;
}

/* GET path; returns the body (caller frees) and status / content type. */
static char *get(const struct server *srv, const char *path, long *status, char *ctype, size_t ctn)
{
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv->port, path);
    CURL *c = curl_easy_init();
    struct body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        if (ctype && ctn)
            snprintf(ctype, ctn, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(c);
    if (!b.p)
        b.p = calloc(1, 1);
    return b.p;
}

/* GET /v1/alerts?… and parse; returns the "alerts" array's parent (caller
 * deletes) or NULL. */
static cJSON *list(const struct server *srv, const char *query, long *status)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/alerts%s", query);
    char ct[128] = "";
    char *body = get(srv, path, status, ct, sizeof ct);
    cJSON *doc = cJSON_Parse(body);
    free(body);
    if (*status == 200)
        CU_ASSERT_STRING_EQUAL(ct, "application/json");
    return doc;
}

static const char *alert_id_at(const cJSON *doc, int i)
{
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "alerts"), i);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
    return cJSON_IsString(id) ? id->valuestring : "";
}

static int alert_count(const cJSON *doc)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "alerts");
    return cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
}

/* ---- an SSE client on its own thread (libcurl multi, woken on stop) ------- */

struct sse {
    CURLM *m;
    CURL *e;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct body b;
    atomic_bool stop;
    bool done;         /* transfer ended */
    CURLcode result;
    struct curl_slist *hdrs;
};

static size_t sse_write(char *data, size_t sz, size_t n, void *ud)
{
    struct sse *s = ud;
    pthread_mutex_lock(&s->mu);
    size_t r = collect(data, sz, n, &s->b);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return r;
}

static void *sse_main(void *arg)
{
    struct sse *s = arg;
    int running = 1;
    CURLcode result = CURLE_OK;
    while (!atomic_load(&s->stop)) {
        curl_multi_perform(s->m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(s->m, &left)))
            if (msg->msg == CURLMSG_DONE)
                result = msg->data.result;
        if (!running)
            break;
        curl_multi_poll(s->m, NULL, 0, 1000, NULL);
    }
    pthread_mutex_lock(&s->mu);
    s->done = true;
    s->result = result;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static struct sse *sse_open(const struct server *srv, const char *query, const char *last_id)
{
    struct sse *s = calloc(1, sizeof *s);
    char url[512], hdr[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/alerts/stream%s", srv->port, query);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->m = curl_multi_init();
    s->e = curl_easy_init();
    curl_easy_setopt(s->e, CURLOPT_URL, url);
    curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
    if (last_id) {
        snprintf(hdr, sizeof hdr, "Last-Event-ID: %s", last_id);
        s->hdrs = curl_slist_append(NULL, hdr);
        curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->hdrs);
    }
    curl_multi_add_handle(s->m, s->e);
    pthread_create(&s->th, NULL, sse_main, s);
    return s;
}

static void sse_close(struct sse *s)
{
    atomic_store(&s->stop, true);
    curl_multi_wakeup(s->m);
    pthread_join(s->th, NULL);
    curl_multi_remove_handle(s->m, s->e);
    curl_easy_cleanup(s->e);
    curl_multi_cleanup(s->m);
    curl_slist_free_all(s->hdrs);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->b.p);
    free(s);
}

static void deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Wait until the received text contains `needle` `times` times (or the
 * transfer ends); 1 on success. */
static int sse_wait_for(struct sse *s, const char *needle, int times, int ms)
{
    struct timespec dl;
    deadline_in(&dl, ms);
    int ok = 0;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int n = 0;
        for (const char *p = s->b.p; p && (p = strstr(p, needle)); p += strlen(needle))
            n++;
        if (n >= times) {
            ok = 1;
            break;
        }
        if (s->done || pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static int sse_wait_done(struct sse *s, int ms)
{
    struct timespec dl;
    deadline_in(&dl, ms);
    pthread_mutex_lock(&s->mu);
    while (!s->done && pthread_cond_timedwait(&s->cv, &s->mu, &dl) == 0)
        ;
    int done = s->done;
    pthread_mutex_unlock(&s->mu);
    return done;
}

/* Parse the received SSE text into up to max (id, data) alert events. */
struct sse_event {
    unsigned long long id;
    char event[32];
    char *data;
};

static int sse_events(struct sse *s, struct sse_event *out, int max)
{
    pthread_mutex_lock(&s->mu);
    char *text = strdup(s->b.p ? s->b.p : "");
    pthread_mutex_unlock(&s->mu);
    int n = 0;
    char *save = NULL;
    /* Blocks are separated by a blank line; within a block, lines by \n. */
    char *p = text;
    while (n < max) {
        char *end = strstr(p, "\n\n");
        if (!end)
            break;
        *end = '\0';
        struct sse_event ev = {0};
        int has = 0;
        for (char *line = strtok_r(p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            if (strncmp(line, "id: ", 4) == 0) {
                ev.id = strtoull(line + 4, NULL, 10);
                has = 1;
            } else if (strncmp(line, "event: ", 7) == 0) {
                snprintf(ev.event, sizeof ev.event, "%s", line + 7);
            } else if (strncmp(line, "data: ", 6) == 0) {
                free(ev.data);
                ev.data = strdup(line + 6);
            }
        }
        if (has)
            out[n++] = ev;
        else
            free(ev.data);
        p = end + 2;
    }
    free(text);
    return n;
}

static void sse_events_free(struct sse_event *ev, int n)
{
    for (int i = 0; i < n; i++)
        free(ev[i].data);
}

static size_t subscribers(vigil_hub *hub)
{
    vigil_hub_counters c;
    CU_ASSERT_EQUAL(vigil_hub_stats(hub, &c), VIGIL_OK);
    return c.subscribers;
}

/* Wait until the hub has `n` subscribers (up to ms). */
static int wait_subscribers(vigil_hub *hub, size_t n, int ms)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        if (subscribers(hub) == n)
            return 1;
        usleep(10000);
    }
    return 0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_create_and_publish_args(void)
{
    vigil_hub *hub = NULL;
    CU_ASSERT_EQUAL(vigil_hub_create(0, NULL), VIGIL_EINVAL);
    CU_ASSERT_EQUAL(vigil_hub_create(0, &hub), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_hub_publish(hub, NULL, 3, "r", "low", "k", 0), VIGIL_EINVAL);
    CU_ASSERT_EQUAL(vigil_hub_publish(hub, "{}", 0, "r", "low", "k", 0), VIGIL_EINVAL);
    size_t big = VIGIL_HUB_MAX_ALERT_BYTES + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    CU_ASSERT_EQUAL(vigil_hub_publish(hub, huge, big, "r", "low", "k", 0), VIGIL_ETOOBIG);
    free(huge);
    CU_ASSERT_EQUAL(vigil_hub_publish(hub, "{}", 2, NULL, NULL, NULL, 0), VIGIL_OK);
    vigil_hub_counters c;
    CU_ASSERT_EQUAL(vigil_hub_stats(hub, &c), VIGIL_OK);
    CU_ASSERT_EQUAL(c.published, 1);
    CU_ASSERT_EQUAL(c.last_seq, 1);
    CU_ASSERT_EQUAL(c.stored, 1);
    CU_ASSERT_EQUAL(c.subscribers, 0);
    CU_ASSERT_EQUAL(vigil_hub_set_keepalive(hub, 1), VIGIL_EINVAL);
    vigil_hub_destroy(hub);
    vigil_hub_destroy(NULL);
    vigil_hub_close(NULL);
}

static void test_list_and_filters(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    /* ts: 2023-11-14T22:13:20Z = 1700000000000 ms, one minute apart */
    publish(srv.hub, "a1", "big_amount", "high", "c1", 1700000000000LL);
    publish(srv.hub, "a2", "velocity", "low", "c2", 1700000060000LL);
    publish(srv.hub, "a3", "big_amount", "critical", "c2", 1700000120000LL);
    publish(srv.hub, "a4", "velocity", "medium", "c1", 1700000180000LL);

    long st;
    cJSON *doc = list(&srv, "", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(alert_count(doc), 4);
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 0), "a4");   /* newest first */
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 3), "a1");
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(doc, "last_seq");
    CU_ASSERT(cJSON_IsNumber(ls) && ls->valuedouble == 4);
    /* the alert objects come back whole */
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "alerts"), 0);
    CU_ASSERT(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(a0, "evidence")));
    cJSON_Delete(doc);

    doc = list(&srv, "?rule=big_amount", &st);
    CU_ASSERT_EQUAL(alert_count(doc), 2);
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 0), "a3");
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 1), "a1");
    cJSON_Delete(doc);

    doc = list(&srv, "?key=c1", &st);
    CU_ASSERT_EQUAL(alert_count(doc), 2);
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 0), "a4");
    cJSON_Delete(doc);

    doc = list(&srv, "?rule=velocity&key=c2", &st);
    CU_ASSERT_EQUAL(alert_count(doc), 1);
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 0), "a2");
    cJSON_Delete(doc);

    doc = list(&srv, "?limit=2", &st);
    CU_ASSERT_EQUAL(alert_count(doc), 2);
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 1), "a3");
    cJSON_Delete(doc);

    doc = list(&srv, "?since=1700000060000", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(alert_count(doc), 3);
    cJSON_Delete(doc);

    doc = list(&srv, "?since=2023-11-14T22:15:00Z", &st);   /* = ...120000 */
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(alert_count(doc), 2);
    cJSON_Delete(doc);

    doc = list(&srv, "?rule=nope", &st);
    CU_ASSERT_EQUAL(alert_count(doc), 0);
    cJSON_Delete(doc);

    doc = list(&srv, "?limit=100000", &st);                 /* clamped */
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(alert_count(doc), 4);
    cJSON_Delete(doc);

    const char *bad[] = {"?limit=0", "?limit=-1", "?limit=ten", "?since=yesterday",
                         "?since=12abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char ct[128] = "";
        char path[128];
        snprintf(path, sizeof path, "/v1/alerts%s", bad[i]);
        char *body = get(&srv, path, &st, ct, sizeof ct);
        CU_ASSERT_EQUAL(st, 400);
        CU_ASSERT_STRING_EQUAL(ct, "application/problem+json");
        cJSON *p = cJSON_Parse(body);
        CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, "status")));
        CU_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "title")));
        cJSON_Delete(p);
        free(body);
    }
    server_stop(&srv);
}

static void test_ring_overwrites_oldest(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 3) == 0);
    const char *ids[] = {"r1", "r2", "r3", "r4", "r5"};
    for (int i = 0; i < 5; i++)
        publish(srv.hub, ids[i], "rule", "info", "k", 1000 + i);
    long st;
    cJSON *doc = list(&srv, "", &st);
    CU_ASSERT_EQUAL(alert_count(doc), 3);
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 0), "r5");
    CU_ASSERT_STRING_EQUAL(alert_id_at(doc, 2), "r3");
    cJSON_Delete(doc);
    vigil_hub_counters c;
    vigil_hub_stats(srv.hub, &c);
    CU_ASSERT_EQUAL(c.published, 5);
    CU_ASSERT_EQUAL(c.stored, 3);
    /* a client further behind than the ring resumes from the oldest kept */
    struct sse *s = sse_open(&srv, "", "1");
    CU_ASSERT(sse_wait_for(s, "event: alert", 3, 5000));
    struct sse_event ev[8];
    int n = sse_events(s, ev, 8);
    CU_ASSERT_EQUAL(n, 3);
    if (n == 3) {
        CU_ASSERT_EQUAL(ev[0].id, 3);
        CU_ASSERT_EQUAL(ev[2].id, 5);
    }
    sse_events_free(ev, n);
    sse_close(s);
    server_stop(&srv);
}

struct pub_args {
    vigil_hub *hub;
    int first;
    int count;
    int delay_ms;
    int failures;   /* written by the thread, read after join */
};

static void *publisher(void *arg)
{
    struct pub_args *a = arg;
    for (int i = 0; i < a->count; i++) {
        if (a->delay_ms)
            usleep((useconds_t)a->delay_ms * 1000);
        char id[32];
        snprintf(id, sizeof id, "s%d", a->first + i);
        if (publish_raw(a->hub, id, "stream_rule", "high", "c9",
                        1700000000000LL + a->first + i) != VIGIL_OK)
            a->failures++;
    }
    return NULL;
}

static void test_stream_live_and_resume(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    /* short keepalives, so that closed streams are noticed quickly */
    CU_ASSERT_EQUAL(vigil_hub_set_keepalive(srv.hub, 200), VIGIL_OK);
    publish(srv.hub, "before", "stream_rule", "low", "c9", 1);   /* seq 1: not replayed */

    struct sse *s = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 1, 5000));
    CU_ASSERT(sse_wait_for(s, "retry: ", 1, 5000));
    usleep(200000);   /* the stream is idle (suspended) when the alerts come */

    pthread_t th;
    struct pub_args pa = {srv.hub, 1, 3, 20, 0};
    pthread_create(&th, NULL, publisher, &pa);
    CU_ASSERT(sse_wait_for(s, "event: alert", 3, 5000));
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL(pa.failures, 0);

    struct sse_event ev[8];
    int n = sse_events(s, ev, 8);
    CU_ASSERT_EQUAL(n, 3);
    for (int i = 0; i < n && i < 3; i++) {
        CU_ASSERT_EQUAL(ev[i].id, (unsigned long long)(i + 2));
        CU_ASSERT_STRING_EQUAL(ev[i].event, "alert");
        cJSON *a = cJSON_Parse(ev[i].data ? ev[i].data : "");
        char want[16];
        snprintf(want, sizeof want, "s%d", i + 1);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(a, "id");
        CU_ASSERT(cJSON_IsString(id) && strcmp(id->valuestring, want) == 0);
        cJSON_Delete(a);
    }
    sse_events_free(ev, n);
    sse_close(s);
    CU_ASSERT(wait_subscribers(srv.hub, 0, 3000));

    /* Reconnect after the first of the three (seq 2): only seq 3 and 4. */
    s = sse_open(&srv, "", "2");
    CU_ASSERT(sse_wait_for(s, "event: alert", 2, 5000));
    usleep(100000);
    n = sse_events(s, ev, 8);
    CU_ASSERT_EQUAL(n, 2);
    if (n == 2) {
        CU_ASSERT_EQUAL(ev[0].id, 3);
        CU_ASSERT_EQUAL(ev[1].id, 4);
        CU_ASSERT(ev[1].data && strstr(ev[1].data, "\"id\":\"s3\""));
    }
    sse_events_free(ev, n);
    sse_close(s);

    /* ?last_event_id= for EventSource, which cannot send the header */
    s = sse_open(&srv, "?last_event_id=3&access_token=x", NULL);
    CU_ASSERT(sse_wait_for(s, "event: alert", 1, 5000));
    usleep(100000);
    n = sse_events(s, ev, 8);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1)
        CU_ASSERT_EQUAL(ev[0].id, 4);
    sse_events_free(ev, n);
    sse_close(s);

    /* up to date: nothing replayed, new ones arrive */
    s = sse_open(&srv, "", "4");
    CU_ASSERT_FATAL(sse_wait_for(s, "retry: ", 1, 5000));   /* registered */
    publish(srv.hub, "late", "stream_rule", "low", "c9", 2);
    CU_ASSERT(sse_wait_for(s, "event: alert", 1, 5000));
    n = sse_events(s, ev, 8);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1)
        CU_ASSERT_EQUAL(ev[0].id, 5);
    sse_events_free(ev, n);
    sse_close(s);

    long st;
    char *body = get(&srv, "/v1/alerts/stream?last_event_id=abc", &st, NULL, 0);
    CU_ASSERT_EQUAL(st, 400);
    free(body);
    server_stop(&srv);
}

static void test_idle_stream_does_not_spin(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    struct sse *s = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 1, 5000));
    CU_ASSERT(sse_wait_for(s, "retry: ", 1, 5000));
    double c0 = cpu_seconds();
    sleep(1);
    usleep(500000);   /* 1.5 s: longer than the daemon's 1 s connection timeout */
    double used = cpu_seconds() - c0;
    printf("\n    CPU over 1.5 s idle with an open stream: %.4f s\n", used);
    CU_ASSERT(used < 0.2);
    /* still alive after the connection timeout: suspended streams do not time out */
    publish(srv.hub, "after-idle", "r", "info", "k", 5);
    CU_ASSERT(sse_wait_for(s, "after-idle", 1, 3000));
    sse_close(s);
    server_stop(&srv);
}

static void test_keepalive_and_disconnect(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    CU_ASSERT_EQUAL(vigil_hub_set_keepalive(srv.hub, 100), VIGIL_OK);
    struct sse *s = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 1, 5000));
    CU_ASSERT(sse_wait_for(s, ": keepalive\n\n", 2, 3000));
    sse_close(s);
    /* the suspended stream notices the vanished client at the next keepalive */
    CU_ASSERT(wait_subscribers(srv.hub, 0, 3000));
    server_stop(&srv);
}

static void test_large_alert(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    struct sse *s = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 1, 5000));
    /* 300 KB: far larger than MHD's per-connection write buffer; with a raw
     * newline between tokens, which must not break the data: line */
    size_t pad = 300000;
    size_t cap = pad + 128;
    char *json = malloc(cap);
    int h = snprintf(json, cap, "{\"id\":\"big\",\n\"details\":{\"pad\":\"");
    memset(json + h, 'x', pad);
    size_t len = (size_t)h + pad;
    memcpy(json + len, "\"}}", 3);
    len += 3;
    CU_ASSERT_EQUAL(vigil_hub_publish(srv.hub, json, len, "r", "info", "k", 1), VIGIL_OK);
    publish(srv.hub, "small-after", "r", "info", "k", 2);
    CU_ASSERT(sse_wait_for(s, "small-after", 1, 5000));
    struct sse_event ev[4];
    int n = sse_events(s, ev, 4);
    CU_ASSERT_EQUAL(n, 2);
    if (n == 2) {
        CU_ASSERT_EQUAL(ev[0].id, 1);
        cJSON *a = cJSON_Parse(ev[0].data);
        CU_ASSERT_PTR_NOT_NULL(a);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(a, "details"), "pad");
        CU_ASSERT(cJSON_IsString(p) && strlen(p->valuestring) == pad);
        cJSON_Delete(a);
        CU_ASSERT_EQUAL(ev[1].id, 2);
    }
    sse_events_free(ev, n);
    free(json);
    sse_close(s);
    server_stop(&srv);
}

static void test_shutdown_with_open_streams(void)
{
    /* close → stop daemon → destroy */
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    struct sse *a = sse_open(&srv, "", NULL);
    struct sse *b = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 2, 5000));
    CU_ASSERT(sse_wait_for(a, "retry: ", 1, 5000));
    CU_ASSERT(sse_wait_for(b, "retry: ", 1, 5000));
    vigil_hub_close(srv.hub);
    /* each stream ends its chunked body cleanly: the client sees a complete
     * response, not a reset */
    CU_ASSERT(sse_wait_done(a, 5000));
    CU_ASSERT(sse_wait_done(b, 5000));
    CU_ASSERT_EQUAL(a->result, CURLE_OK);
    CU_ASSERT_EQUAL(b->result, CURLE_OK);
    long st;
    char *body = get(&srv, "/v1/alerts/stream", &st, NULL, 0);
    CU_ASSERT_EQUAL(st, 503);
    free(body);
    MHD_stop_daemon(srv.d);
    vigil_hub_destroy(srv.hub);
    sse_close(a);
    sse_close(b);

    /* destroy first, then stop the daemon (streams keep the hub alive) */
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    a = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 1, 5000));
    CU_ASSERT(sse_wait_for(a, "retry: ", 1, 5000));
    vigil_hub_destroy(srv.hub);
    MHD_stop_daemon(srv.d);
    sse_close(a);
}

#define NTHREADS 4
#define PER_THREAD 2000

static void test_concurrent_publishers(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 1000) == 0);
    struct sse *s = sse_open(&srv, "", NULL);
    CU_ASSERT_FATAL(wait_subscribers(srv.hub, 1, 5000));
    pthread_t th[NTHREADS];
    struct pub_args pa[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        pa[i] = (struct pub_args){srv.hub, i * PER_THREAD, PER_THREAD, 0, 0};
        pthread_create(&th[i], NULL, publisher, &pa[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        CU_ASSERT_EQUAL(pa[i].failures, 0);
    }
    vigil_hub_counters c;
    vigil_hub_stats(srv.hub, &c);
    CU_ASSERT_EQUAL(c.published, NTHREADS * PER_THREAD);
    CU_ASSERT_EQUAL(c.last_seq, NTHREADS * PER_THREAD);
    CU_ASSERT_EQUAL(c.stored, 1000);
    /* the stream's ids strictly increase (it may skip what the ring dropped
     * while it was behind) and end at the last one */
    char want[32];
    snprintf(want, sizeof want, "id: %d\n", NTHREADS * PER_THREAD);
    CU_ASSERT(sse_wait_for(s, want, 1, 10000));
    static struct sse_event ev[NTHREADS * PER_THREAD];
    int n = sse_events(s, ev, NTHREADS * PER_THREAD);
    CU_ASSERT(n >= 1000);
    int increasing = 1;
    for (int i = 1; i < n; i++)
        if (ev[i].id <= ev[i - 1].id)
            increasing = 0;
    CU_ASSERT(increasing);
    sse_events_free(ev, n);
    sse_close(s);
    server_stop(&srv);
}

static void test_assets(void)
{
    struct server srv;
    CU_ASSERT_FATAL(server_start(&srv, 0) == 0);
    long st;
    char ct[128];
    char *body = get(&srv, "/", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(ct, "text/html; charset=utf-8");
    CU_ASSERT_PTR_NOT_NULL(strstr(body, "<html"));
    free(body);
    body = get(&srv, "/app.js", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(ct, "text/javascript; charset=utf-8");
    free(body);
    body = get(&srv, "/style.css", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_STRING_EQUAL(ct, "text/css; charset=utf-8");
    free(body);
    body = get(&srv, "/nope.html", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 404);
    CU_ASSERT_STRING_EQUAL(ct, "application/problem+json");
    free(body);
    body = get(&srv, "/../CMakeLists.txt", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 404);
    free(body);
    server_stop(&srv);
}

static void test_thread_per_connection_refused(void)
{
    /* Suspending is not possible with a thread per connection: the stream
     * handler says so instead of hanging or panicking. */
    struct server srv;
    memset(&srv, 0, sizeof srv);
    CU_ASSERT_FATAL(vigil_hub_create(0, &srv.hub) == VIGIL_OK);
    srv.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                             0, NULL, NULL, route, &srv, MHD_OPTION_END);
    CU_ASSERT_FATAL(srv.d != NULL);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    srv.port = di ? di->port : 0;
    long st;
    char *body = get(&srv, "/v1/alerts/stream", &st, NULL, 0);
    CU_ASSERT_EQUAL(st, 500);
    free(body);
    server_stop(&srv);
}

static int mode_epoll(void) { g_poll_flag = MHD_USE_EPOLL_LINUX_ONLY; g_pool = 0; return 0; }
static int mode_poll(void) { g_poll_flag = MHD_USE_POLL; g_pool = 0; return 0; }
static int mode_select(void) { g_poll_flag = 0; g_pool = 0; return 0; }
static int mode_pool(void) { g_poll_flag = MHD_USE_EPOLL_LINUX_ONLY; g_pool = 3; return 0; }

static void add_stream_suite(const char *name, CU_InitializeFunc init)
{
    CU_pSuite s = CU_add_suite(name, init, mode_epoll);
    CU_add_test(s, "SSE live delivery and Last-Event-ID", test_stream_live_and_resume);
    CU_add_test(s, "idle stream does not spin", test_idle_stream_does_not_spin);
    CU_add_test(s, "keepalive and client disconnect", test_keepalive_and_disconnect);
    CU_add_test(s, "shutdown with open streams", test_shutdown_with_open_streams);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("hub", NULL, NULL);
    CU_add_test(s, "create and publish arguments", test_create_and_publish_args);
    CU_add_test(s, "GET /v1/alerts and its filters", test_list_and_filters);
    CU_add_test(s, "ring overwrites the oldest", test_ring_overwrites_oldest);
    CU_add_test(s, "SSE live delivery and Last-Event-ID", test_stream_live_and_resume);
    CU_add_test(s, "idle stream does not spin", test_idle_stream_does_not_spin);
    CU_add_test(s, "keepalive and client disconnect", test_keepalive_and_disconnect);
    CU_add_test(s, "alert larger than MHD's buffer", test_large_alert);
    CU_add_test(s, "shutdown with open streams", test_shutdown_with_open_streams);
    CU_add_test(s, "concurrent publishers", test_concurrent_publishers);
    CU_add_test(s, "dashboard assets", test_assets);
    CU_add_test(s, "thread per connection is refused", test_thread_per_connection_refused);
    add_stream_suite("hub streams, poll()", mode_poll);
    add_stream_suite("hub streams, select()", mode_select);
    add_stream_suite("hub streams, epoll thread pool", mode_pool);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    curl_global_cleanup();
    return failures != 0;
}
