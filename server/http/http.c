/* http.c — the libmicrohttpd daemon and the routing of requests to the
 * handlers the wings registered (http.h). Bodies are collected here, within
 * the size limit; per-request state lives in vigil_http_req and is freed
 * when the request ends, after a suspended request was resumed or its
 * client went away. */
#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "http.h"
#include "reply.h"
#include "auth.h"
#include "server/common/log.h"
#include "vigil/clock.h"
#include "tls.h"

typedef struct route {
    const char *method, *path;
    size_t plen;
    int prefix;
    vigil_http_handler fn;
    void *ctx;
} route;

struct vigil_http {
    struct sockaddr_in sa;
    char listen[128];
    size_t max_body;
    route routes[VIGIL_HTTP_MAX_ROUTES];
    int nroutes;
    vigil_http_handler fallback;
    void *fallback_ctx;
    vigil_auth *auth;
    int loopback;                /* listen is a loopback address */
    vigil_http_limits lim;
    pthread_mutex_t ip_mu;       /* per_ip */
    struct ip_count { uint32_t ip; int n, used; } *per_ip;   /* open connections per IPv4 address (open addressing) */
    atomic_ullong refused_per_ip, timed_out, headers_too_big;
    atomic_ullong next_request;  /* request ids: a counter … */
    unsigned long long request_seed;   /* … mixed with a random start */
    void (*on_stop)(void *);
    void *on_stop_ctx;
    struct MHD_Daemon *d;
    int port;
    atomic_ullong clients_gone, errors_logged;
    vigil_tls_pem tls;                        /* HTTPS when tls.cert is set (tls.c) */
    struct MHD_OptionItem tls_opts[3];        /* MHD_OPTION_ARRAY: the PEMs, or nothing */
};

static int method_is(const char *want, const char *got) {
    if (strcmp(want, got) == 0) return 1;
    return strcmp(want, "GET") == 0 && strcmp(got, "HEAD") == 0;
}

static const route *find(const vigil_http *h, const char *url, const char *method, int *other_method) {
    *other_method = 0;
    for (int i = 0; i < h->nroutes; i++) {
        const route *r = &h->routes[i];
        int hit = r->prefix ? strncmp(url, r->path, r->plen) == 0 : strcmp(url, r->path) == 0;
        if (!hit) continue;
        if (method_is(r->method, method)) return r;
        *other_method = i + 1;
    }
    return NULL;
}

/* The presented token: Authorization: Bearer <t>, or (the alert stream
 * only: a browser's EventSource sends no header) ?access_token=<t>. */
static const char *bearer(struct MHD_Connection *c, const char *url) {
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ') a++;
        return a;
    }
    if (strcmp(url, "/v1/alerts/stream") == 0) return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "access_token");
    return NULL;
}

int vigil_http_take(vigil_http_req *r, long n, int *retry_s) { return vigil_auth_take(r->auth, r->token, n, retry_s); }

void vigil_http_foreach_limited(vigil_http *h, void (*fn)(void *ud, const char *name, unsigned long long n), void *ud) {
    vigil_auth_foreach_limited(h->auth, fn, ud);
}

vigil_status vigil_http_set_auth(vigil_http *h, vigil_auth *auth, vigil_error *err) {
    vigil_auth_destroy(h->auth);
    h->auth = auth;
    if (!h->loopback && !vigil_auth_enabled(auth))
        return vigil_error_set(err, VIGIL_EINVAL,
                               "--listen '%s': with no API tokens configured vigil listens on loopback only; "
                               "configure tokens (DESIGN.md §6) to listen on other addresses", h->listen);
    return VIGIL_OK;
}

void vigil_http_set_limits(vigil_http *h, const vigil_http_limits *l) { h->lim = *l; }

/* ---- connections per client address -------------------------------------------------- */

#define PER_IP_SLOTS 4096   /* distinct addresses tracked at once; beyond, connections are not limited */

/* The slot of ip, or with add a new one for it (NULL: the table is full).
 * Open addressing; a slot once used keeps its address when its count drops
 * to 0 (so a probe never stops short of an address further on) and is
 * reused only by add. */
static struct ip_count *ip_slot(vigil_http *h, uint32_t ip, int add) {
    uint32_t i = (ip * 2654435761u) & (PER_IP_SLOTS - 1);
    struct ip_count *spare = NULL;
    for (int probe = 0; probe < PER_IP_SLOTS; probe++, i = (i + 1) & (PER_IP_SLOTS - 1)) {
        struct ip_count *c = &h->per_ip[i];
        if (c->used && c->ip == ip) return c;
        if (!c->used) {
            if (!add) return NULL;
            if (!spare) spare = c;
            break;
        }
        if (c->n == 0 && !spare) spare = c;
    }
    if (spare && add) {
        spare->used = 1;
        spare->ip = ip;
        spare->n = 0;
    }
    return add ? spare : NULL;
}

static uint32_t client_ip(const struct sockaddr *sa, int *ok) {
    *ok = sa && sa->sa_family == AF_INET;
    return *ok ? ((const struct sockaddr_in *)sa)->sin_addr.s_addr : 0;
}

/* MHD's accept policy: refuse a connection from an address that holds max_conns_per_ip already. */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len) {
    vigil_http *h = cls;
    int ok;
    uint32_t ip = client_ip(addr, &ok);
    if (!ok || !h->per_ip || h->lim.max_conns_per_ip <= 0) return MHD_YES;
    pthread_mutex_lock(&h->ip_mu);
    struct ip_count *c = ip_slot(h, ip, 0);
    int full = c && c->n >= h->lim.max_conns_per_ip;
    pthread_mutex_unlock(&h->ip_mu);
    if (full) atomic_fetch_add(&h->refused_per_ip, 1);
    return full ? MHD_NO : MHD_YES;
}

/* A connection's own state (MHD's socket context): whether it is counted
 * against its address, and its client's last verified token. */
typedef struct conn_ctx {
    int counted;
    vigil_auth_memo memo;
} conn_ctx;

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                              enum MHD_ConnectionNotificationCode code) {
    vigil_http *h = cls;
    int start = code == MHD_CONNECTION_NOTIFY_STARTED;
    conn_ctx *cc = *socket_ctx;
    if (start) *socket_ctx = cc = calloc(1, sizeof *cc);   /* NULL (no memory): no memo, not counted */
    if (h->per_ip && cc && (start || cc->counted)) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        int ok;
        uint32_t ip = client_ip(ci ? ci->client_addr : NULL, &ok);
        if (ok) {
            pthread_mutex_lock(&h->ip_mu);
            struct ip_count *s = ip_slot(h, ip, start);
            if (s) {
                if (start) s->n++;
                else if (s->n > 0) s->n--;
            }
            if (start) cc->counted = s != NULL;
            pthread_mutex_unlock(&h->ip_mu);
        }
    }
    if (!start && cc) {
        vigil_auth_memo_clear(&cc->memo);
        free(cc);
        *socket_ctx = NULL;
    }
}

/* The client's X-Request-Id when it is 1 to 64 of [A-Za-z0-9._-], else a
 * new one: 16 hex digits from a per-process random start and a counter. */
static void request_id(vigil_http *h, struct MHD_Connection *c, char out[65]) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = v ? strlen(v) : 0;
    int ok = n > 0 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)v[i]) || v[i] == '.' || v[i] == '_' || v[i] == '-';
    if (ok) {
        memcpy(out, v, n + 1);
        return;
    }
    unsigned long long k = atomic_fetch_add(&h->next_request, 1);
    snprintf(out, 65, "%016llx", (k * 0x9E3779B97F4A7C15ull) ^ h->request_seed);
}

static enum MHD_Result handle(vigil_http *h, struct MHD_Connection *c, const char *url, const char *method,
                              const char *upload, size_t *upload_size, vigil_http_req *r);

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    vigil_http *h = cls;
    vigil_http_req *r = *con_cls;
    int first = !r;
    if (first) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        r->method = method;
        snprintf(r->url, sizeof r->url, "%s", url);
        r->start_us = vigil_now_us();
        *con_cls = r;
        request_id(h, c, r->request_id);
    }
    vigil_log_set_request(r->request_id);   /* log lines and answers of this request carry it */
    enum MHD_Result ret = first ? handle(h, c, url, method, NULL, NULL, r) : handle(h, c, url, method, upload, upload_size, r);
    vigil_log_set_request(NULL);
    return ret;
}

static enum MHD_Result handle(vigil_http *h, struct MHD_Connection *c, const char *url, const char *method,
                              const char *upload, size_t *upload_size, vigil_http_req *r) {
    if (!upload_size) {   /* the request's first call: its headers only */
        /* who: decided on the headers, before the body and before any 404/405/413/422 */
        vigil_role need = vigil_auth_role_for(method, url);
        const char *tok = bearer(c, url), *who = "local";
        const union MHD_ConnectionInfo *sc = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        conn_ctx *cc = sc ? sc->socket_context : NULL;
        int st = vigil_auth_check_memo(h->auth, need, tok, cc ? &cc->memo : NULL, &who, &r->token);
        snprintf(r->who, sizeof r->who, "%s", who);
        r->auth = h->auth;
        if (st == 401)
            return vigil_http_problem_h(c, 401, "Unauthorized",
                                        tok ? "unknown token" : "a token is required: Authorization: Bearer <token>",
                                        NULL, "WWW-Authenticate", "Bearer");
        if (st == 403) {
            static const char *const names[] = {"", "metrics", "ingest", "viewer", "analyst", "admin"};
            char d[160];
            snprintf(d, sizeof d, "this token's role does not allow it: it needs the %s role", names[need]);
            return vigil_http_problem(c, 403, "Forbidden", d, NULL, NULL);
        }
        return MHD_YES;
    }
    if (*upload_size) {   /* a body: collected within the limit, whatever the method */
        if (!r->too_big) {
            if (r->len + *upload_size > h->max_body) {
                r->too_big = 1;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
            } else {
                if (r->len + *upload_size + 1 > r->cap) {
                    size_t cap = r->cap ? r->cap * 2 : 4096;
                    while (cap < r->len + *upload_size + 1) cap *= 2;
                    char *nb = realloc(r->body, cap);
                    if (!nb) return MHD_NO;
                    r->body = nb;
                    r->cap = cap;
                }
                memcpy(r->body + r->len, upload, *upload_size);
                r->len += *upload_size;
                r->body[r->len] = '\0';
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    int other;
    const route *rt = find(h, url, method, &other);
    if (rt) return rt->fn(rt->ctx, c, url, r);
    if (other) {
        const route *o = &h->routes[other - 1];
        char d[64];
        if (strcmp(o->method, "GET") == 0) snprintf(d, sizeof d, "this resource supports GET only");
        else snprintf(d, sizeof d, "use %s", o->method);
        return vigil_http_problem(c, 405, "Method Not Allowed", d, NULL, NULL);
    }
    if (!method_is("GET", method))
        return vigil_http_problem(c, 405, "Method Not Allowed", "this resource supports GET only", NULL, NULL);
    if (strncmp(url, "/v1/", 4) == 0) return vigil_http_problem(c, 404, "Not Found", "no such API resource", NULL, NULL);
    if (h->fallback) return h->fallback(h->fallback_ctx, c, url, r);
    return vigil_http_problem(c, 404, "Not Found", NULL, NULL, NULL);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    vigil_http *h = cls;
    if (toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED) atomic_fetch_add(&h->timed_out, 1);
    vigil_http_req *r = *con_cls;
    if (!r) return;
    if (vigil_log_json()) {   /* the request log: changes and refusals (not every read or event batch) */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_HTTP_STATUS);
        unsigned status = ci ? ci->http_status : 0;
        int change = strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0 && strcmp(r->url, "/v1/events") != 0;
        if (status >= 400 || change || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
            vigil_log_set_request(r->request_id);
            vigil_log(status >= 500 || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? VIGIL_LOG_ERROR
                      : status >= 400                                          ? VIGIL_LOG_WARN
                                                                               : VIGIL_LOG_INFO,
                      "http", "%s %s -> %u (%s, %.1f ms)%s", r->method, r->url, status, r->who,
                      (double)(vigil_now_us() - r->start_us) / 1000.0,
                      toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " not completed: the client left or timed out");
            vigil_log_set_request(NULL);
        }
    }
    if (r->state && r->state_free) r->state_free(r->state);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

/* libmicrohttpd's messages: a client that went away (a browser leaving the
 * SSE stream) is normal, counted and not logged; the rest go to stderr. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    vigil_http *h = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (strstr(msg, "Failed to send") || strstr(msg, "reset by peer") || strstr(msg, "closed by remote") ||
        strstr(msg, "Broken pipe")) {
        atomic_fetch_add(&h->clients_gone, 1);
        return;
    }
    if (strstr(msg, "response code is 431")) {   /* headers over limits.max_header_bytes: MHD answered 431 */
        atomic_fetch_add(&h->headers_too_big, 1);
        return;
    }
    atomic_fetch_add(&h->errors_logged, 1);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    vigil_log(VIGIL_LOG_WARN, "http", "http: %s", msg);
}

static int loopback(const char *host) {
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0;
}

vigil_status vigil_http_create(const char *listen, size_t max_body, vigil_http **out, vigil_error *err) {
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return vigil_error_set(err, VIGIL_EINVAL, "--listen '%s': expected HOST:PORT", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) return vigil_error_set(err, VIGIL_EINVAL, "--listen '%s': bad port", listen);
    vigil_http *h = calloc(1, sizeof *h);
    if (!h) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    h->loopback = loopback(host);
    if (RAND_bytes((unsigned char *)&h->request_seed, sizeof h->request_seed) != 1) h->request_seed = (unsigned long long)time(NULL);
    pthread_mutex_init(&h->ip_mu, NULL);
    h->sa.sin_family = AF_INET;
    h->sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &h->sa.sin_addr) != 1) {
        free(h);
        return vigil_error_set(err, VIGIL_EINVAL, "--listen '%s': bad IPv4 address", listen);
    }
    snprintf(h->listen, sizeof h->listen, "%s", listen);
    h->port = (int)port;
    h->max_body = max_body;
    *out = h;
    return VIGIL_OK;
}

void vigil_http_route(vigil_http *h, const char *method, const char *path, int prefix, vigil_http_handler fn,
                      void *ctx) {
    if (h->nroutes == VIGIL_HTTP_MAX_ROUTES) {
        vigil_log(VIGIL_LOG_ERROR, "http", "http: more than %d routes; %s %s not served", VIGIL_HTTP_MAX_ROUTES, method, path);
        return;
    }
    h->routes[h->nroutes++] = (route){.method = method, .path = path, .plen = strlen(path), .prefix = prefix,
                                      .fn = fn, .ctx = ctx};
}

void vigil_http_fallback(vigil_http *h, vigil_http_handler fn, void *ctx) {
    h->fallback = fn;
    h->fallback_ctx = ctx;
}

void vigil_http_on_stop(vigil_http *h, void (*fn)(void *ctx), void *ctx) {
    h->on_stop = fn;
    h->on_stop_ctx = ctx;
}

vigil_status vigil_http_set_tls(vigil_http *h, const char *cert_path, const char *key_path, vigil_error *err) {
    vigil_tls_pem pem;
    vigil_status s = vigil_tls_pem_load(cert_path, key_path, &pem, err);
    if (s != VIGIL_OK || !pem.cert) return s;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        vigil_tls_pem_free(&pem);
        return vigil_error_set(err, VIGIL_EINVAL, "tls_cert: this libmicrohttpd was built without TLS (GnuTLS); "
                                                  "install Debian's libmicrohttpd12, or terminate TLS in a proxy");
    }
    vigil_tls_pem_free(&h->tls);
    h->tls = pem;
    h->tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls.cert};
    h->tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls.key};
    h->tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return VIGIL_OK;
}

int vigil_http_tls(const vigil_http *h) { return h->tls.cert != NULL; }

vigil_status vigil_http_start(vigil_http *h, vigil_error *err) {
    if (h->lim.max_conns_per_ip > 0 && !(h->per_ip = calloc(PER_IP_SLOTS, sizeof *h->per_ip)))
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    unsigned timeout_s = h->lim.timeout_ms > 0 ? (unsigned)((h->lim.timeout_ms + 999) / 1000) : 0;
    size_t mem = h->lim.max_header_bytes ? h->lim.max_header_bytes : 32u << 10;
    if (!h->tls.cert) h->tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_ALLOW_SUSPEND_RESUME |
                                MHD_USE_ERROR_LOG | (h->tls.cert ? MHD_USE_TLS : 0),
                            (uint16_t)h->port, accept_policy, h, handler, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
                            MHD_OPTION_SOCK_ADDR, &h->sa, MHD_OPTION_NOTIFY_COMPLETED, completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h,
                            MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
                            MHD_OPTION_THREAD_POOL_SIZE, 2, MHD_OPTION_CONNECTION_LIMIT, 1000,
                            MHD_OPTION_ARRAY, h->tls_opts, MHD_OPTION_END);
    if (!h->d && h->tls.cert)
        return vigil_error_set(err, VIGIL_EIO, "cannot start HTTPS on %s: the port is in use, or GnuTLS refused "
                                               "tls_cert or tls_key (see the message above: is the key the "
                                               "certificate's?)", h->listen);
    if (!h->d) return vigil_error_set(err, VIGIL_EIO, "cannot listen on %s (in use?)", h->listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (di) h->port = di->port;
    return VIGIL_OK;
}

int vigil_http_port(const vigil_http *h) { return h->port; }

void vigil_http_stop(vigil_http *h) {
    if (!h || !h->d) return;
    if (h->on_stop) h->on_stop(h->on_stop_ctx);
    MHD_stop_daemon(h->d);
    h->d = NULL;
}

void vigil_http_destroy(vigil_http *h) {
    if (!h) return;
    vigil_http_stop(h);
    vigil_auth_destroy(h->auth);
    pthread_mutex_destroy(&h->ip_mu);
    free(h->per_ip);
    vigil_tls_pem_free(&h->tls);
    free(h);
}

void vigil_http_get_stats(vigil_http *h, vigil_http_stats *out) {
    out->clients_gone = atomic_load(&h->clients_gone);
    out->errors_logged = atomic_load(&h->errors_logged);
    out->refused_per_ip = atomic_load(&h->refused_per_ip);
    out->timed_out = atomic_load(&h->timed_out);
    out->headers_too_big = atomic_load(&h->headers_too_big);
}
