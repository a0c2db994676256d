/* test_transport.c — issue 13, "Transport": vigil reached over TLS, and
 * vigil reaching NATS and Redis with credentials, against the real binary
 * and real servers:
 *   - HTTPS: a certificate made here with `openssl req -x509`; libcurl with
 *     CAINFO verifies it (and fails without it); plain HTTP to the TLS port
 *     gets no answer; events in and alerts out over TLS with tokens; a wrong
 *     tls_cert/tls_key stops the server with a message naming key and path;
 *   - NATS: a nats-server that requires a user and password, over TLS:
 *     vigil with the right ones ingests an event and publishes its alert;
 *     with the credentials in the URL the start line shows "***"; with a
 *     wrong password, or without the CA, it does not start, and says why;
 *     `vigil feed` publishes with the same credentials; a token server too;
 *   - Redis: a redis-server with requirepass and an ACL user: vigil as that
 *     user keeps its state there; the default user's password in the URL
 *     works; a wrong password stops it with WRONGPASS.
 * Every test greps the server's log for every secret it set (passwords,
 * tokens, a line of the private key) and fails when one appears. */
#include <CUnit/Basic.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"

#define INGEST "ingest-tok-5b8e1f0a"
#define VIEWER "viewer-tok-c3d94e27"
#define NATS_PW "n4ts-pw-7Qx2Lr9"
#define NATS_WRONG "n4ts-wrong-Vb31"
#define REDIS_PW "r3dis-acl-pw-Hk8z"
#define REDIS_DEFAULT_PW "r3dis-default-pw-Zq4m"
#define REDIS_WRONG "r3dis-wrong-Jd72"

static char *dir;
static char cert[600], key[600], rules[600];
static char key_line[128];   /* a line of the private key's base64: must never be logged */
static const char *EV = "{\"id\":\"e1\",\"k\":\"a\",\"ts\":1700000000000}";

/* ---- helpers -------------------------------------------------------------------- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 20);
    if (b) fread(b, 1, (1 << 20) - 1, f);
    fclose(f);
    return b;
}

static int write_file(const char *path, const char *fmt, ...) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    return fclose(f);
}

/* How many of the secrets appear in the log (each one found is printed). */
static int secrets_in_log(const char *logpath) {
    static const char *const secrets[] = {INGEST, VIEWER, NATS_PW, NATS_WRONG, REDIS_PW, REDIS_DEFAULT_PW,
                                          REDIS_WRONG, key_line, NULL};
    char *log = slurp(logpath);
    if (!log) return 1;
    int n = 0;
    for (int i = 0; secrets[i]; i++)
        if (*secrets[i] && strstr(log, secrets[i])) {
            printf("  secret #%d found in %s\n", i, logpath);
            n++;
        }
    free(log);
    return n;
}

typedef struct vigil_run {
    vt_proc *p;
    char log[640];
    int port;
} vigil_run;

/* Start vigil with the config file conf (and env, may be NULL) and wait up
 * to 20 s for its "listening on <scheme>://127.0.0.1:PORT" line. 0: running;
 * -1: it exited or did not listen (r->p is then NULL, the log kept). */
static int vigil_start(vigil_run *r, const char *name, const char *conf, const char *const *env, const char *scheme) {
    memset(r, 0, sizeof *r);
    snprintf(r->log, sizeof r->log, "%s/%s.log", dir, name);
    const char *argv[] = {VIGIL_BIN, "serve", "--config", conf, "--data-dir", "", "--idle-timeout", "0", NULL};
    if (!(r->p = vt_spawn_env(argv, env, r->log))) return -1;
    char want[64];   /* scheme NULL: either */
    snprintf(want, sizeof want, "listening on %s", scheme ? scheme : "");
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 20000; vt_sleep_ms(20)) {
        char *t = slurp(r->log);
        const char *m = t ? strstr(t, want) : NULL;
        if (m) m = strstr(m, "://127.0.0.1:");
        r->port = m && (!scheme || m == strstr(t, want) + strlen(want)) ? atoi(m + 13) : 0;
        free(t);
        if (r->port > 0) return 0;
        if (!vt_alive(r->p)) break;
    }
    vt_kill(r->p, SIGKILL);   /* reaps it (or finds it reaped) and frees the handle */
    r->p = NULL;
    return -1;
}

static void vigil_stop(vigil_run *r) {
    if (r->p) vt_kill(r->p, SIGTERM);
    r->p = NULL;
}

/* Run vigil with conf (and env) expecting it to refuse to start: 1 when it
 * exited non-zero within 20 s without listening, and its log has `expect`. */
static int vigil_refuses(const char *name, const char *conf, const char *const *env, const char *expect) {
    vigil_run r;
    if (vigil_start(&r, name, conf, env, NULL) == 0) {
        vigil_stop(&r);
        printf("  %s: vigil started\n", name);
        return 0;
    }
    char *log = slurp(r.log);
    int ok = log && strstr(log, expect) != NULL;
    if (!ok) printf("  %s: no \"%s\" in the log:\n%s\n", name, expect, log ? log : "(none)");
    free(log);
    return ok;
}

typedef struct body {
    char *p;
    size_t n;
} body;

static size_t on_data(char *d, size_t sz, size_t nm, void *ud) {
    body *b = ud;
    char *np = realloc(b->p, b->n + sz * nm + 1);
    if (!np) return 0;
    memcpy(np + b->n, d, sz * nm);
    b->n += sz * nm;
    np[b->n] = '\0';
    b->p = np;
    return sz * nm;
}

/* One request with libcurl; cainfo: the CA file to verify the server with
 * (NULL: the system's). Returns the CURLcode; *status the HTTP status. */
static long req_timeout_ms = 5000;   /* shorter for the alert stream, which stays open */

static CURLcode request(const char *method, const char *url, const char *token, const char *data,
                        const char *cainfo, long *status, char **out) {
    CURL *c = curl_easy_init();
    body b = {0};
    struct curl_slist *h = NULL;
    char auth[200];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (cainfo) curl_easy_setopt(c, CURLOPT_CAINFO, cainfo);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data ? data : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(data ? strlen(data) : 0));
    }
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out) *out = b.p;
    else free(b.p);
    return rc;
}

/* GET url until the body has `want` (5 s). 1 when it did. */
static int eventually_has(const char *url, const char *token, const char *cainfo, const char *want) {
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 5000; vt_sleep_ms(50)) {
        long st = 0;
        char *b = NULL;
        request("GET", url, token, NULL, cainfo, &st, &b);
        int ok = st == 200 && b && strstr(b, want);
        free(b);
        if (ok) return 1;
    }
    return 0;
}

/* ---- HTTPS on the API ------------------------------------------------------------- */

static vigil_run api;
static char api_base[64];

static int https_setup(void) {
    char conf[700];
    snprintf(conf, sizeof conf, "%s/https.conf.lua", dir);
    if (write_file(conf,
                   "return { rules = \"%s\", listen = \"127.0.0.1:0\", workers = 1,\n"
                   "  tls_cert = \"%s\", tls_key = \"%s\",\n"
                   "  tokens = { { name = \"shop\", token = \"" INGEST "\", role = \"ingest\" },\n"
                   "             { name = \"ops\", token = \"" VIEWER "\", role = \"viewer\" } } }\n",
                   rules, cert, key))
        return -1;
    if (vigil_start(&api, "https", conf, NULL, "https")) {
        vt_dump_log(api.log, 4000);
        return -1;
    }
    snprintf(api_base, sizeof api_base, "127.0.0.1:%d", api.port);
    return 0;
}

static int https_teardown(void) {
    vigil_stop(&api);
    return 0;
}

static void test_https_verified(void) {
    char url[128];
    long st = 0;
    snprintf(url, sizeof url, "https://%s/healthz", api_base);
    CU_ASSERT_EQUAL(request("GET", url, NULL, NULL, cert, &st, NULL), CURLE_OK);
    CU_ASSERT_EQUAL(st, 200);
    /* the system's CAs do not know the test's certificate: verification fails */
    CURLcode rc = request("GET", url, NULL, NULL, NULL, &st, NULL);
    CU_ASSERT(rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE);
    CU_ASSERT_EQUAL(st, 0);
}

static void test_plain_http_refused(void) {
    char url[128];
    long st = 0;
    snprintf(url, sizeof url, "http://%s/healthz", api_base);
    CURLcode rc = request("GET", url, NULL, NULL, NULL, &st, NULL);
    CU_ASSERT_NOT_EQUAL(rc, CURLE_OK);   /* no HTTP answer on the TLS port */
    CU_ASSERT_EQUAL(st, 0);
    snprintf(url, sizeof url, "http://%s/v1/events", api_base);
    rc = request("POST", url, INGEST, EV, NULL, &st, NULL);
    CU_ASSERT_NOT_EQUAL(rc, CURLE_OK);
    CU_ASSERT_EQUAL(st, 0);
}

static void test_events_and_alerts_over_tls(void) {
    char ev[128], al[128];
    long st = 0;
    snprintf(ev, sizeof ev, "https://%s/v1/events", api_base);
    snprintf(al, sizeof al, "https://%s/v1/alerts", api_base);
    CU_ASSERT_EQUAL(request("POST", ev, NULL, EV, cert, &st, NULL), CURLE_OK);
    CU_ASSERT_EQUAL(st, 401);   /* tokens still hold over TLS */
    CU_ASSERT_EQUAL(request("POST", ev, VIEWER, EV, cert, &st, NULL), CURLE_OK);
    CU_ASSERT_EQUAL(st, 403);
    CU_ASSERT_EQUAL(request("POST", ev, INGEST, EV, cert, &st, NULL), CURLE_OK);
    CU_ASSERT_EQUAL(st, 202);
    CU_ASSERT(eventually_has(al, VIEWER, cert, "\"rule\":\"one\""));
    CU_ASSERT_EQUAL(request("GET", al, NULL, NULL, cert, &st, NULL), CURLE_OK);
    CU_ASSERT_EQUAL(st, 401);
    /* the alert stream (a suspended connection) over TLS, with ?access_token= */
    char sse[200];
    char *b = NULL;
    snprintf(sse, sizeof sse, "https://%s/v1/alerts/stream?access_token=" VIEWER "&last_event_id=0", api_base);
    req_timeout_ms = 1000;
    CU_ASSERT_EQUAL(request("GET", sse, NULL, NULL, cert, &st, &b), CURLE_OPERATION_TIMEDOUT);   /* it stays open */
    req_timeout_ms = 5000;
    CU_ASSERT(b && strstr(b, "event: alert") && strstr(b, "\"rule\":\"one\""));
    free(b);
    /* ?wait: the request is suspended until its event is matched, then answered over TLS */
    char wait[160];
    snprintf(wait, sizeof wait, "%s?wait=2000", ev);
    CU_ASSERT_EQUAL(request("POST", wait, INGEST, "{\"id\":\"w1\",\"k\":\"w\",\"ts\":1700000000000}", cert, &st, &b),
                    CURLE_OK);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(b && strstr(b, "\"event\":\"w1\""));
    free(b);
}

static void test_https_log(void) {
    char *log = slurp(api.log);
    CU_ASSERT(log && strstr(log, "listening on https://"));
    free(log);
    CU_ASSERT_EQUAL(secrets_in_log(api.log), 0);
}

/* A bad tls_cert/tls_key stops the server before it listens, naming what. */
static void test_bad_tls_config(void) {
    char conf[700], notpem[700], missing[700];
    snprintf(notpem, sizeof notpem, "%s/notpem.txt", dir);
    snprintf(missing, sizeof missing, "%s/no-such-cert.pem", dir);
    CU_ASSERT_FATAL(write_file(notpem, "not a certificate\n") == 0);
    snprintf(conf, sizeof conf, "%s/bad1.conf.lua", dir);
    write_file(conf, "return { rules = \"%s\", listen = \"127.0.0.1:0\", tls_cert = \"%s\" }\n", rules, cert);
    CU_ASSERT(vigil_refuses("bad1", conf, NULL, "tls_cert is set but tls_key is not"));
    snprintf(conf, sizeof conf, "%s/bad2.conf.lua", dir);
    write_file(conf, "return { rules = \"%s\", listen = \"127.0.0.1:0\", tls_cert = \"%s\", tls_key = \"%s\" }\n",
               rules, missing, key);
    CU_ASSERT(vigil_refuses("bad2", conf, NULL, "no-such-cert.pem': cannot open it"));
    snprintf(conf, sizeof conf, "%s/bad3.conf.lua", dir);
    write_file(conf, "return { rules = \"%s\", listen = \"127.0.0.1:0\", tls_cert = \"%s\", tls_key = \"%s\" }\n",
               rules, cert, notpem);
    CU_ASSERT(vigil_refuses("bad3", conf, NULL, "notpem.txt' is not a PEM file"));
    snprintf(conf, sizeof conf, "%s/bad4.conf.lua", dir);   /* swapped */
    write_file(conf, "return { rules = \"%s\", listen = \"127.0.0.1:0\", tls_cert = \"%s\", tls_key = \"%s\" }\n",
               rules, key, cert);
    CU_ASSERT(vigil_refuses("bad4", conf, NULL, "swapped"));
    char log[700];
    snprintf(log, sizeof log, "%s/bad4.log", dir);
    CU_ASSERT_EQUAL(secrets_in_log(log), 0);   /* the key's bytes are never shown */
}

/* ---- NATS with a user, a password and TLS ---------------------------------------- */

static vt_proc *nats;
static int nats_port;

static int nats_setup(void) {
    char conf[700], log[700];
    snprintf(conf, sizeof conf, "%s/nats.conf", dir);
    snprintf(log, sizeof log, "%s/nats-server.log", dir);
    for (int attempt = 0; attempt < 5 && !nats; attempt++) {
        nats_port = vt_free_port();
        if (write_file(conf,
                       "listen: 127.0.0.1:%d\n"
                       "tls { cert_file: \"%s\", key_file: \"%s\" }\n"
                       "authorization { user: vigil, password: \"" NATS_PW "\" }\n",
                       nats_port, cert, key))
            return -1;
        const char *argv[] = {"nats-server", "-c", conf, NULL};
        if (!(nats = vt_spawn(argv, log))) return -1;
        if (vt_wait_port(nats_port, 10000) != 0 || !vt_alive(nats)) {
            vt_kill(nats, SIGKILL);
            nats = NULL;
        }
    }
    if (!nats) vt_dump_log(log, 2000);
    return nats ? 0 : -1;
}

static int nats_teardown(void) {
    vt_kill(nats, SIGTERM);
    return 0;
}

static const char *nats_conf(const char *name, const char *nats_table) {
    static char conf[700];
    snprintf(conf, sizeof conf, "%s/%s.conf.lua", dir, name);
    write_file(conf, "return { rules = \"%s\", listen = \"127.0.0.1:0\", workers = 1, nats = %s }\n", rules,
               nats_table);
    return conf;
}

static void test_nats_user_password_tls(void) {
    char t[1200], url[128];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nats_port);
    snprintf(t, sizeof t, "{ url = \"%s\", user = \"vigil\", password = \"" NATS_PW "\", tls = { ca = \"%s\" } }", url,
             cert);
    vigil_run r;
    CU_ASSERT_FATAL(vigil_start(&r, "nats-ok", nats_conf("nats-ok", t), NULL, "http") == 0);
    /* the test's own client: the same user, over TLS */
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, url);
    if (s == NATS_OK) s = natsOptions_SetUserInfo(o, "vigil", NATS_PW);
    if (s == NATS_OK) s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(o, cert);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, nc, "vigil.alerts.>");
    if (s == NATS_OK) s = natsConnection_Flush(nc);
    if (s == NATS_OK) s = natsConnection_PublishString(nc, "vigil.events.tx", "{\"id\":\"n1\",\"k\":\"b\",\"ts\":1700000000000}");
    CU_ASSERT_EQUAL(s, NATS_OK);
    natsMsg *m = NULL;
    if (s == NATS_OK) s = natsSubscription_NextMsg(&m, sub, 5000);
    CU_ASSERT_EQUAL(s, NATS_OK);   /* vigil took the event over NATS and published its alert */
    CU_ASSERT(m && strstr(natsMsg_GetData(m), "\"event\":\"n1\""));
    natsMsg_Destroy(m);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    char al[128];
    snprintf(al, sizeof al, "http://127.0.0.1:%d/v1/alerts", r.port);
    CU_ASSERT(eventually_has(al, NULL, NULL, "\"event\":\"n1\""));
    vigil_stop(&r);
    char *log = slurp(r.log);
    CU_ASSERT(log && strstr(log, "NATS nats://127.0.0.1:") && strstr(log, "(user)"));
    free(log);
    CU_ASSERT_EQUAL(secrets_in_log(r.log), 0);
}

static void test_nats_credentials_in_url(void) {
    char t[1200];
    snprintf(t, sizeof t, "{ url = \"nats://vigil:" NATS_PW "@127.0.0.1:%d\", tls = { ca = \"%s\" } }", nats_port,
             cert);
    vigil_run r;
    CU_ASSERT_FATAL(vigil_start(&r, "nats-url", nats_conf("nats-url", t), NULL, "http") == 0);
    vigil_stop(&r);
    char *log = slurp(r.log);
    CU_ASSERT(log && strstr(log, "NATS nats://***@127.0.0.1:"));   /* the start line, redacted */
    free(log);
    CU_ASSERT_EQUAL(secrets_in_log(r.log), 0);
}

static void test_nats_wrong_password(void) {
    char t[1200];
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", user = \"vigil\", password = \"" NATS_WRONG "\", "
                          "tls = { ca = \"%s\" } }", nats_port, cert);
    CU_ASSERT(vigil_refuses("nats-wrong", nats_conf("nats-wrong", t), NULL, "refused vigil's credentials"));
    /* the same through the URL: its password is not shown either */
    snprintf(t, sizeof t, "{ url = \"nats://vigil:" NATS_WRONG "@127.0.0.1:%d\", tls = { ca = \"%s\" } }", nats_port,
             cert);
    CU_ASSERT(vigil_refuses("nats-wrong-url", nats_conf("nats-wrong-url", t), NULL, "nats://***@127.0.0.1:"));
    /* and through VIGIL_NATS_PASSWORD over the file's */
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", user = \"vigil\", password = \"" NATS_PW "\", "
                          "tls = { ca = \"%s\" } }", nats_port, cert);
    const char *env[] = {"VIGIL_NATS_PASSWORD=" NATS_WRONG, NULL};
    CU_ASSERT(vigil_refuses("nats-wrong-env", nats_conf("nats-wrong-env", t), env, "Authentication Violation"));
    char log[700];
    const char *names[] = {"nats-wrong", "nats-wrong-url", "nats-wrong-env"};
    for (int i = 0; i < 3; i++) {
        snprintf(log, sizeof log, "%s/%s.log", dir, names[i]);
        CU_ASSERT_EQUAL(secrets_in_log(log), 0);
    }
}

static void test_nats_needs_tls(void) {
    char t[1200];
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", user = \"vigil\", password = \"" NATS_PW "\" }",
             nats_port);
    /* nats.c upgrades to the TLS the server asks for, then cannot verify its certificate */
    CU_ASSERT(vigil_refuses("nats-notls", nats_conf("nats-notls", t), NULL, "signed by the CA in nats.tls.ca"));
    char log[700];
    snprintf(log, sizeof log, "%s/nats-notls.log", dir);
    CU_ASSERT_EQUAL(secrets_in_log(log), 0);
}

/* `vigil feed` goes through the same options builder: the VIGIL_NATS_*
 * variables (or the URL) carry its credentials and CA. */
static int run_feed(const char *name, const char *url, const char *const *env, int *status) {
    char log[700];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    const char *argv[] = {VIGIL_BIN, "feed", "--gen", "--count", "20", "--nats", url, NULL};
    vt_proc *p = vt_spawn_env(argv, env, log);
    if (!p) return -1;
    if (!vt_wait_exit(p, 20000)) {
        vt_kill(p, SIGKILL);
        return -1;
    }
    *status = p->status;
    vt_kill(p, SIGTERM);   /* reaped: frees the handle */
    return 0;
}

static void test_feed_with_credentials(void) {
    char url[128], ca[700];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", nats_port);
    snprintf(ca, sizeof ca, "VIGIL_NATS_TLS_CA=%s", cert);
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, url);
    if (s == NATS_OK) s = natsOptions_SetUserInfo(o, "vigil", NATS_PW);
    if (s == NATS_OK) s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(o, cert);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    if (s == NATS_OK) s = natsConnection_SubscribeSync(&sub, nc, "vigil.events.>");
    if (s == NATS_OK) s = natsConnection_Flush(nc);
    CU_ASSERT_FATAL(s == NATS_OK);
    const char *env[] = {"VIGIL_NATS_USER=vigil", "VIGIL_NATS_PASSWORD=" NATS_PW, ca, NULL};
    int st = -1;
    CU_ASSERT_EQUAL(run_feed("feed-ok", url, env, &st), 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int got = 0;
    natsMsg *m = NULL;
    while (got < 20 && natsSubscription_NextMsg(&m, sub, 2000) == NATS_OK) {
        got++;
        natsMsg_Destroy(m);
    }
    CU_ASSERT_EQUAL(got, 20);   /* every generated event arrived through the authenticated TLS connection */
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    /* a wrong password in the URL: exit 1, the reason, no password */
    char bad[160];
    snprintf(bad, sizeof bad, "nats://vigil:" NATS_WRONG "@127.0.0.1:%d", nats_port);
    const char *env2[] = {ca, NULL};
    CU_ASSERT_EQUAL(run_feed("feed-wrong", bad, env2, &st), 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    char log[700];
    snprintf(log, sizeof log, "%s/feed-wrong.log", dir);
    char *t = slurp(log);
    CU_ASSERT(t && strstr(t, "nats://***@127.0.0.1:") && strstr(t, "refused vigil's credentials"));
    free(t);
    CU_ASSERT_EQUAL(secrets_in_log(log), 0);
    snprintf(log, sizeof log, "%s/feed-ok.log", dir);
    CU_ASSERT_EQUAL(secrets_in_log(log), 0);
}

/* Credentials that cannot work are refused before connecting, by name. */
static void test_nats_credential_errors(void) {
    char t[2000];
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", user = \"vigil\", password = \"" NATS_PW "\", "
                          "token = \"" NATS_WRONG "\", tls = { ca = \"%s\" } }", nats_port, cert);
    CU_ASSERT(vigil_refuses("nats-two", nats_conf("nats-two", t), NULL, "set only one of nats.user/nats.password"));
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", creds = \"%s/no.creds\" }", nats_port, dir);
    CU_ASSERT(vigil_refuses("nats-creds", nats_conf("nats-creds", t), NULL, "no.creds': cannot open it"));
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", tls = { ca = \"%s\", cert = \"%s\" } }", nats_port,
             cert, cert);
    CU_ASSERT(vigil_refuses("nats-cert", nats_conf("nats-cert", t), NULL, "nats.tls.cert is set but nats.tls.key"));
    char log[700];
    snprintf(log, sizeof log, "%s/nats-two.log", dir);
    CU_ASSERT_EQUAL(secrets_in_log(log), 0);
}

/* A server that takes a token: nats.token, and the token in the URL. */
static void test_nats_token(void) {
    char conf[700], log[700], t[1200];
    int port = vt_free_port();
    snprintf(conf, sizeof conf, "%s/nats-token.conf", dir);
    snprintf(log, sizeof log, "%s/nats-token-server.log", dir);
    write_file(conf, "listen: 127.0.0.1:%d\nauthorization { token: \"" NATS_PW "\" }\n", port);
    const char *argv[] = {"nats-server", "-c", conf, NULL};
    vt_proc *ns = vt_spawn(argv, log);
    CU_ASSERT_FATAL(ns && vt_wait_port(port, 10000) == 0);
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", token = \"" NATS_PW "\" }", port);
    vigil_run r;
    CU_ASSERT(vigil_start(&r, "nats-token", nats_conf("nats-token", t), NULL, "http") == 0);
    vigil_stop(&r);
    char *l = slurp(r.log);
    CU_ASSERT(l && strstr(l, "(token)"));
    free(l);
    CU_ASSERT_EQUAL(secrets_in_log(r.log), 0);
    snprintf(t, sizeof t, "{ url = \"nats://" NATS_PW "@127.0.0.1:%d\" }", port);
    CU_ASSERT(vigil_start(&r, "nats-token-url", nats_conf("nats-token-url", t), NULL, "http") == 0);
    vigil_stop(&r);
    CU_ASSERT_EQUAL(secrets_in_log(r.log), 0);
    snprintf(t, sizeof t, "{ url = \"nats://127.0.0.1:%d\", token = \"" NATS_WRONG "\" }", port);
    CU_ASSERT(vigil_refuses("nats-token-wrong", nats_conf("nats-token-wrong", t), NULL, "refused vigil's credentials"));
    snprintf(log, sizeof log, "%s/nats-token-wrong.log", dir);
    CU_ASSERT_EQUAL(secrets_in_log(log), 0);
    vt_kill(ns, SIGTERM);
}

/* ---- Redis with a password and an ACL user ---------------------------------------- */

static vt_proc *redis;
static int redis_port;

static redisContext *redis_as(const char *user, const char *pw) {
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisReply *r = user ? redisCommand(c, "AUTH %s %s", user, pw) : redisCommand(c, "AUTH %s", pw);
    int ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!ok) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static int redis_setup(void) {
    char log[700], portbuf[16];
    snprintf(log, sizeof log, "%s/redis-server.log", dir);
    for (int attempt = 0; attempt < 5 && !redis; attempt++) {
        redis_port = vt_free_port();
        snprintf(portbuf, sizeof portbuf, "%d", redis_port);
        const char *argv[] = {"redis-server", "--port", portbuf, "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", dir, "--requirepass", REDIS_DEFAULT_PW,
                              "--user", "vigil", "on", ">" REDIS_PW, "~vigil:*", "&*", "+@all", "-@dangerous",
                              NULL};   /* the ACL docs/operations.md suggests */
        if (!(redis = vt_spawn(argv, log))) return -1;
        redisContext *c = NULL;
        for (long long t0 = vt_now_ms(); !c && vt_now_ms() - t0 < 10000 && vt_alive(redis); vt_sleep_ms(50))
            c = redis_as("vigil", REDIS_PW);
        if (c) {
            redisFree(c);
        } else {
            vt_kill(redis, SIGKILL);
            redis = NULL;
        }
    }
    if (!redis) vt_dump_log(log, 2000);
    return redis ? 0 : -1;
}

static int redis_teardown(void) {
    vt_kill(redis, SIGTERM);
    return 0;
}

static const char *redis_conf(const char *name, const char *redis_table) {
    static char conf[700];
    snprintf(conf, sizeof conf, "%s/%s.conf.lua", dir, name);
    write_file(conf, "return { rules = \"%s\", listen = \"127.0.0.1:0\", workers = 1, redis = %s }\n", rules,
               redis_table);
    return conf;
}

static void test_redis_acl_user(void) {
    char t[600];
    snprintf(t, sizeof t, "{ url = \"redis://127.0.0.1:%d/0\", user = \"vigil\", password = \"" REDIS_PW "\" }",
             redis_port);
    vigil_run r;
    CU_ASSERT_FATAL(vigil_start(&r, "redis-acl", redis_conf("redis-acl", t), NULL, "http") == 0);
    char ev[128], al[128];
    long st = 0;
    snprintf(ev, sizeof ev, "http://127.0.0.1:%d/v1/events", r.port);
    snprintf(al, sizeof al, "http://127.0.0.1:%d/v1/alerts", r.port);
    CU_ASSERT_EQUAL(request("POST", ev, NULL, "{\"id\":\"r1\",\"k\":\"c\",\"ts\":1700000000000}", NULL, &st, NULL),
                    CURLE_OK);
    CU_ASSERT_EQUAL(st, 202);
    CU_ASSERT(eventually_has(al, NULL, NULL, "\"event\":\"r1\""));
    vigil_stop(&r);
    /* the key's state is in Redis, written as the ACL user */
    redisContext *c = redis_as("vigil", REDIS_PW);
    CU_ASSERT_FATAL(c != NULL);
    redisReply *rep = redisCommand(c, "SCAN 0 MATCH vigil:{k:*}:k:c COUNT 10000");   /* KEYS is @dangerous */
    CU_ASSERT(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 && rep->element[1]->elements == 1);
    if (rep) freeReplyObject(rep);
    rep = redisCommand(c, "EXISTS vigil:rules");
    CU_ASSERT(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1);   /* the catalog too */
    if (rep) freeReplyObject(rep);
    redisFree(c);
    CU_ASSERT_EQUAL(secrets_in_log(r.log), 0);
}

static void test_redis_default_user_in_url(void) {
    char url[200];
    snprintf(url, sizeof url, "VIGIL_REDIS=redis://:" REDIS_DEFAULT_PW "@127.0.0.1:%d/1", redis_port);
    const char *env[] = {url, NULL};
    char t[600];
    snprintf(t, sizeof t, "{ prefix = \"vdef\" }");
    vigil_run r;
    CU_ASSERT_FATAL(vigil_start(&r, "redis-url", redis_conf("redis-url", t), env, "http") == 0);
    char ev[128];
    long st = 0;
    snprintf(ev, sizeof ev, "http://127.0.0.1:%d/v1/events", r.port);
    CU_ASSERT_EQUAL(request("POST", ev, NULL, "{\"id\":\"r2\",\"k\":\"d\",\"ts\":1700000000000}", NULL, &st, NULL),
                    CURLE_OK);
    CU_ASSERT_EQUAL(st, 202);
    vigil_stop(&r);
    redisContext *c = redis_as(NULL, REDIS_DEFAULT_PW);
    CU_ASSERT_FATAL(c != NULL);
    redisReply *rep = redisCommand(c, "SELECT 1");
    if (rep) freeReplyObject(rep);
    rep = redisCommand(c, "KEYS vdef:{k:*}:k:d");
    CU_ASSERT(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1);
    if (rep) freeReplyObject(rep);
    redisFree(c);
    CU_ASSERT_EQUAL(secrets_in_log(r.log), 0);
}

static void test_redis_wrong_password(void) {
    char t[600];
    snprintf(t, sizeof t, "{ url = \"redis://127.0.0.1:%d/0\", user = \"vigil\", password = \"" REDIS_PW "\" }",
             redis_port);
    const char *env[] = {"VIGIL_REDIS_PASSWORD=" REDIS_WRONG, NULL};
    CU_ASSERT(vigil_refuses("redis-wrong", redis_conf("redis-wrong", t), env, "AUTH refused: WRONGPASS"));
    char u[200];
    snprintf(u, sizeof u, "VIGIL_REDIS=redis://vigil:" REDIS_WRONG "@127.0.0.1:%d/0", redis_port);
    const char *env2[] = {u, NULL};
    CU_ASSERT(vigil_refuses("redis-wrong-url", redis_conf("redis-wrong-url", "{ prefix = \"vigil\" }"), env2,
                            "WRONGPASS"));
    /* no password at all: Redis says NOAUTH, vigil does not start */
    snprintf(t, sizeof t, "{ url = \"redis://127.0.0.1:%d/0\" }", redis_port);
    CU_ASSERT(vigil_refuses("redis-none", redis_conf("redis-none", t), NULL, "NOAUTH"));
    char log[700];
    const char *names[] = {"redis-wrong", "redis-wrong-url", "redis-none"};
    for (int i = 0; i < 3; i++) {
        snprintf(log, sizeof log, "%s/%s.log", dir, names[i]);
        CU_ASSERT_EQUAL(secrets_in_log(log), 0);
    }
}

/* ---- main --------------------------------------------------------------------------- */

/* The test's certificate: self-signed, for 127.0.0.1 (IP and DNS names). */
static int make_cert(void) {
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1,DNS:localhost >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        fprintf(stderr, "openssl req failed (is the openssl CLI installed? scripts/deps.sh)\n");
        return -1;
    }
    char *k = slurp(key);
    const char *nl = k ? strchr(k, '\n') : NULL;   /* the second line: base64 of the key */
    if (!nl || strlen(nl + 1) < 40) {
        free(k);
        return -1;
    }
    snprintf(key_line, sizeof key_line, "%.40s", nl + 1);
    free(k);
    return 0;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!(dir = vt_tmpdir()) || make_cert()) return 1;
    snprintf(rules, sizeof rules, "%s/rules", dir);
    char rf[700];
    snprintf(rf, sizeof rf, "%s/one.lua", rules);
    if (mkdir(rules, 0700) != 0 ||
        write_file(rf, "rule { name = \"one\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n"))
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("HTTPS on the API", https_setup, https_teardown);
    CU_add_test(s, "the certificate verifies with its CA file, not without", test_https_verified);
    CU_add_test(s, "plain HTTP to the TLS port gets no HTTP answer", test_plain_http_refused);
    CU_add_test(s, "events in and alerts out over TLS (list, stream, ?wait), tokens enforced",
                test_events_and_alerts_over_tls);
    CU_add_test(s, "the start line says https; no token or key bytes logged", test_https_log);
    CU_add_test(s, "a bad tls_cert/tls_key stops the server, naming the key and path", test_bad_tls_config);
    s = CU_add_suite("NATS with a user, a password and TLS", nats_setup, nats_teardown);
    CU_add_test(s, "the right credentials over TLS: an event in over NATS, its alert out", test_nats_user_password_tls);
    CU_add_test(s, "credentials in the URL work; the start line shows ***", test_nats_credentials_in_url);
    CU_add_test(s, "a wrong password (file, URL, VIGIL_NATS_PASSWORD): no start, a clear error, no secret",
                test_nats_wrong_password);
    CU_add_test(s, "no CA for a TLS server: no start, says which setting", test_nats_needs_tls);
    CU_add_test(s, "vigil feed: the same credentials and CA (variables), a wrong password in the URL",
                test_feed_with_credentials);
    CU_add_test(s, "two kinds of credentials, a missing creds file, a cert without its key: refused by name",
                test_nats_credential_errors);
    CU_add_test(s, "a token server: nats.token and the token in the URL; a wrong token refused", test_nats_token);
    s = CU_add_suite("Redis with a password and an ACL user", redis_setup, redis_teardown);
    CU_add_test(s, "the ACL user: state and catalog in Redis", test_redis_acl_user);
    CU_add_test(s, "the default user's password in the URL (VIGIL_REDIS)", test_redis_default_user_in_url);
    CU_add_test(s, "a wrong or missing password: no start, WRONGPASS/NOAUTH, no secret", test_redis_wrong_password);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    curl_global_cleanup();
    return f ? 1 : 0;
}
