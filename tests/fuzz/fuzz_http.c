/* fuzz_http.c — libFuzzer target for the HTTP edge: a real vigil server,
 * in process, answering requests built from the fuzzer's input.
 *
 * Everything a client sends reaches the server through this edge (route,
 * headers, auth, body, NDJSON batches, rule sources, lists, snoozes), so the
 * edge is fuzzed as a client sees it: LLVMFuzzerInitialize starts the server
 * (vigil_server_start, memory store, nothing durable, two workers, three
 * rules written to a temporary directory, five tokens of every role, an
 * 8 KiB body limit) on 127.0.0.1:0, and every input becomes one request over
 * a fresh loopback connection (`Connection: close`), read to the end with a
 * deadline. The input is decoded as
 *
 *   byte 0   the route template (bits 0..4: the real route table, static
 *            assets, path traversal, odd methods, or RAW: the rest of the
 *            input is the request as it is) and, for {N}/{L}, a rule or list
 *            name out of a small set (bits 5..7), so the catalog stays small
 *   byte 1   bits 0..2 the credentials (none, ingest, viewer, analyst, admin,
 *            unknown, a rate-limited ingest token, ?access_token=), bits 3..4
 *            the Content-Type, bit 5 a chunked body, bit 6 HTTP/1.0
 *   rest     PARAM '\n' BODY: PARAM fills the template's {P} (bytes outside
 *            the URL's safe set percent-encoded) or becomes its query string
 *
 * Checked on every answer (an abort with the request and the answer
 * otherwise): a status line HTTP/1.x with a status in 100..599, never 500; a
 * libmicrohttpd answer of its own (no Content-Type, an HTML body: a request
 * it refuses before any handler) only with a 4xx/5xx status it documents,
 * and for a structured request only 413 or 431; every other status >= 400 is
 * application/problem+json whose body is a JSON object with "title" and
 * "status" equal to the HTTP status; 401 carries `WWW-Authenticate: Bearer`;
 * application/json bodies parse; no token's text appears anywhere in an
 * answer (the harness removes the tokens from everything it sends but the
 * Authorization header and ?access_token=, so none can be stored and echoed
 * back legitimately); a structured request always gets an answer within 10 s
 * (a RAW one may be cut by the server or left unanswered: it may be
 * incomplete; it is half-closed once sent and given 300 ms); every 500
 * inputs /healthz answers 200.
 *
 * State accumulates across inputs (rule versions, lists, snoozes, key
 * state): names are drawn from small sets and the server is stopped and
 * started afresh every 20,000 inputs or 1,000 accepted changes, which also
 * runs the whole stop path (drain, free) under ASan and LeakSanitizer. The
 * server is stopped at exit, so LeakSanitizer's final check sees everything
 * it allocated. FUZZ_VERBOSE=1 prints each request's first line, its time
 * and the status it got (to check that a seed does what it is meant to);
 * FUZZ_HTTP_DUMP=FILE writes a failing request and its whole answer there
 * (the report shows their first 4000 bytes). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "server/server.h"

#define MAX_BODY 8192              /* the server's body limit: 413 within reach of -max_len */
#define ANSWER_MAX (8u << 20)      /* bytes of an answer read at most */
#define DEADLINE_MS 10000          /* a structured request must be answered within this */
#define RAW_DEADLINE_MS 300        /* a raw one may be incomplete: give up after this */
#define RESTART_INPUTS 20000       /* bounds the state that accumulates */
#define RESTART_CHANGES 1000
#define HEALTH_EVERY 500

static const char *const TOKENS[] = {"fz-ingest-6b1d0e93", "fz-viewer-2c7a4f18", "fz-analyst-8e3b5d27",
                                     "fz-admin-4a9f1c60", "fz-slow-7d2e8b35"};
#define NTOKENS 5

static char dir[128], rules_dir[192];
static vigil_server_config cfg;   /* the server keeps pointers into it: static */
static vigil_server *srv;
static int port, verbose;
static unsigned long inputs, changes;

/* ---- the server --------------------------------------------------------------------- */

static const char *const RULE_FILES[][2] = {
    {"fz_pattern.lua",
     "rule{ name='fz_pattern', key='customer_id', within='1h',\n"
     "  pattern = begin('probe'):where{ tx_amount=lt(10) }:times_or_more(2)\n"
     "            :followed_by('cash'):where{ tx_amount=gt(ref('probe','tx_amount')),\n"
     "                                        email=matches('@mailinator\\\\.com$','i') } }\n"},
    {"fz_window.lua",
     "rule{ name='fz_window', key='card.id', window=sliding('10m'),\n"
     "  when = all_of{ ge(count(), 3), gt(sum('tx_amount'), 100) } }\n"},
    {"fz_list.lua",
     "rule{ name='fz_list', key='customer_id', where={ ['card.bin']=in_list('fz_bins') },\n"
     "  window=tumbling('1m'), when=ge(count(), 2) }\n"},
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void remove_dir(const char *d) { nftw(d, rm_one, 8, FTW_DEPTH | FTW_PHYS); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* A crash exits without atexit handlers: remove the directories of dead runs. */
static void sweep(const char *tmp) {
    DIR *d = opendir(tmp);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strncmp(de->d_name, "vigil-fuzz-http.", 16) != 0) continue;
        long pid = strtol(de->d_name + 16, &end, 10);
        if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive or not ours */
        char p[400];
        snprintf(p, sizeof p, "%s/%s", tmp, de->d_name);
        remove_dir(p);
    }
    closedir(d);
}

static void start_server(void) {
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_server_start(&cfg, &srv, &err);
    if (st != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&err, buf, sizeof buf);
        fprintf(stderr, "fuzz_http: the server does not start: %s\n", buf[0] ? buf : vigil_status_str(st));
        abort();
    }
    port = vigil_server_port(srv);
    changes = 0;
}

static void cleanup(void) {
    vigil_server_stop(srv);   /* everything freed: LeakSanitizer's check at exit sees any leak */
    srv = NULL;
    if (verbose) fprintf(stderr, "fuzz_http: the server stopped\n");
    if (dir[0]) remove_dir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    verbose = getenv("FUZZ_VERBOSE") != NULL;
    signal(SIGPIPE, SIG_IGN);   /* a server that closes early must not kill the client */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) > 60) tmp = "/tmp";
    sweep(tmp);
    snprintf(dir, sizeof dir, "%s/vigil-fuzz-http.%ld", tmp, (long)getpid());
    remove_dir(dir);   /* a reused pid */
    snprintf(rules_dir, sizeof rules_dir, "%s/rules", dir);
    char p[300];
    snprintf(p, sizeof p, "%s/lists", rules_dir);
    if (mkdir(dir, 0700) != 0 || mkdir(rules_dir, 0700) != 0 || mkdir(p, 0700) != 0) {
        perror("fuzz_http: mkdir");
        abort();
    }
    for (size_t i = 0; i < sizeof RULE_FILES / sizeof RULE_FILES[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", rules_dir, RULE_FILES[i][0]);
        write_file(p, RULE_FILES[i][1]);
    }
    snprintf(p, sizeof p, "%s/lists/fz_bins.txt", rules_dir);
    write_file(p, "# bins\n411111\n550000\n");
    cfg.rules = rules_dir;
    cfg.listen = "127.0.0.1:0";
    cfg.workers = 2;
    cfg.partitions = 4;
    cfg.queue_cap = 4096;
    cfg.max_body = MAX_BODY;
    cfg.data_dir = "";   /* nothing durable: no files written per request */
    static const char *const roles[] = {"ingest", "viewer", "analyst", "admin", "ingest"};
    static const char *const names[] = {"shop", "ops", "alice", "root", "slow"};
    for (int i = 0; i < NTOKENS; i++)
        cfg.tokens[i] = (vigil_token_config){.name = names[i], .token = TOKENS[i], .role = roles[i],
                                             .rate = i == 4 ? 5 : 0};
    cfg.ntokens = NTOKENS;
    atexit(cleanup);
    start_server();
    return 0;
}

/* ---- building a request --------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) abort();
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...) {
    char t[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    put(b, t, n < 0 ? 0 : (size_t)n >= sizeof t ? sizeof t - 1 : (size_t)n);
}

/* URL bytes: the safe set as it is ('%', '?', '&', '=' too: the fuzzer
 * writes its own escapes and queries), anything else percent-encoded. */
static void put_url(buf *b, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/%?", (int)c))
            put(b, &s[i], 1);
        else
            putf(b, "%%%02X", c);
    }
}

/* A header value: printable ASCII only. */
static void put_header_value(buf *b, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x20 && s[i] < 0x7f) put(b, &s[i], 1);
}

/* Remove every token's text from s[0..n) (its first letter changes), so
 * that no token can be stored by a request and echoed back later. */
static void scrub(unsigned char *s, size_t n) {
    for (int t = 0; t < NTOKENS; t++) {
        size_t tl = strlen(TOKENS[t]);
        for (unsigned char *p = s; (p = memmem(p, n - (size_t)(p - s), TOKENS[t], tl)); p += tl) *p = 'F';
    }
}

/* RAW requests: the token may stay only right after "Bearer " in the
 * header block or after "access_token=" in the request line. */
static void scrub_raw(unsigned char *s, size_t n) {
    unsigned char *hend = memmem(s, n, "\r\n\r\n", 4);
    unsigned char *lend = memmem(s, n, "\r\n", 2);
    for (int t = 0; t < NTOKENS; t++) {
        size_t tl = strlen(TOKENS[t]);
        for (unsigned char *p = s; (p = memmem(p, n - (size_t)(p - s), TOKENS[t], tl)); p += tl) {
            size_t off = (size_t)(p - s);
            int bearer = off >= 7 && (!hend || p < hend) && strncasecmp((char *)p - 7, "Bearer ", 7) == 0;
            int query = off >= 13 && (!lend || p < lend) && memcmp(p - 13, "access_token=", 13) == 0;
            if (!bearer && !query) *p = 'F';
        }
    }
}

enum { P_NONE, P_PARAM, P_NAME, P_LIST, P_WAIT };
typedef struct route {
    const char *method, *pre;   /* the path up to the slot */
    int slot;                   /* what fills it */
    const char *post;           /* the path after it */
} route;

#define RAW_ROUTE 0
static const route ROUTES[32] = {
    {NULL, NULL, P_NONE, NULL},   /* RAW */
    {"POST", "/v1/events", P_NONE, ""},
    {"POST", "/v1/events?wait=", P_WAIT, ""},
    {"GET", "/v1/alerts", P_NONE, ""},
    {"GET", "/v1/alerts/stream", P_NONE, ""},
    {"GET", "/v1/rules", P_NONE, ""},
    {"GET", "/v1/rules/", P_PARAM, ""},
    {"PUT", "/v1/rules/", P_NAME, ""},
    {"DELETE", "/v1/rules/", P_NAME, ""},
    {"POST", "/v1/rules/", P_NAME, "/mode"},
    {"POST", "/v1/rules/", P_NAME, "/rollback"},
    {"POST", "/v1/rules/", P_NAME, "/promote"},
    {"GET", "/v1/rules/", P_NAME, "/compare"},
    {"POST", "/v1/rules/", P_NAME, "/snooze"},
    {"POST", "/v1/rules:test", P_NONE, ""},
    {"GET", "/v1/keys/", P_PARAM, ""},
    {"GET", "/v1/lists", P_NONE, ""},
    {"GET", "/v1/lists/", P_PARAM, ""},
    {"PUT", "/v1/lists/", P_LIST, ""},
    {"GET", "/v1/audit", P_NONE, ""},
    {"GET", "/v1/deadletters", P_NONE, ""},
    {"GET", "/metrics", P_NONE, ""},
    {"GET", "/healthz", P_NONE, ""},
    {"GET", "/readyz", P_NONE, ""},
    {"GET", "/v1/stats", P_NONE, ""},
    {"GET", "/", P_PARAM, ""},             /* the dashboard, its assets, traversal attempts */
    {"HEAD", "/", P_PARAM, ""},
    {"OPTIONS", "/", P_PARAM, ""},
    {"PUT", "/v1/alerts/", P_PARAM, "/disposition"},
    {"POST", "/", P_PARAM, ""},            /* any path, with a body */
    {"DELETE", "/v1/", P_PARAM, ""},
    {"PATCH", "/v1/rules/", P_NAME, ""},
};

/* {N}: rule names, the three of the rules directory, two new ones, and
 * three that are refused before any state changes. */
static const char *const RULE_NAMES[8] = {"fz_pattern", "fz_window", "fz_list", "fz_new", "fz_new2", "FZ_Upper", "",
                                          "fz_a_name_that_is_far_too_long_for_a_rule_name_of_vigil_xxxxxxxxxxxxx"};
static const char *const LIST_NAMES[8] = {"fz_bins", "fz_bins", "fz_other", "fz-other.v2", ".hidden", "", "a b",
                                          "fz_bins/x"};

static const char *const CTYPES[4] = {NULL, "application/json", "application/x-ndjson", "text/x-lua"};

typedef struct request {
    buf b;
    int raw, sse, head, change;
    char line[160];   /* the first line, for messages */
} request;

static void build(request *r, const uint8_t *data, size_t size) {
    const route *rt = &ROUTES[data[0] & 31];
    unsigned sel = data[0] >> 5, flags = size > 1 ? data[1] : 0;
    unsigned char *rest = NULL;
    size_t rn = size > 2 ? size - 2 : 0;
    if (rn) {
        rest = malloc(rn);
        memcpy(rest, data + 2, rn);
    }
    if (rt->method == NULL) {   /* RAW */
        r->raw = 1;
        if (rn) {
            scrub_raw(rest, rn);
            put(&r->b, rest, rn);
        }
        free(rest);
        return;
    }
    if (rn) scrub(rest, rn);
    unsigned char *nl = rn ? memchr(rest, '\n', rn) : NULL;
    size_t pn = nl ? (size_t)(nl - rest) : rn;
    const unsigned char *param = rest, *body = nl ? nl + 1 : NULL;
    size_t bn = nl ? rn - pn - 1 : 0;
    r->head = strcmp(rt->method, "HEAD") == 0;
    r->sse = strcmp(rt->pre, "/v1/alerts/stream") == 0;
    r->change = strcmp(rt->method, "GET") != 0 && strcmp(rt->method, "HEAD") != 0 && strcmp(rt->pre, "/v1/events") != 0;
    int auth = flags & 7, http10 = (flags >> 6) & 1, chunked = (flags >> 5) & 1 && !http10;
    /* the request line */
    putf(&r->b, "%s ", rt->method);
    puts_(&r->b, rt->pre);
    int query = strchr(rt->pre, '?') != NULL;
    switch (rt->slot) {
    case P_PARAM: put_url(&r->b, param, pn); break;
    case P_NAME: puts_(&r->b, RULE_NAMES[sel]); break;
    case P_LIST: puts_(&r->b, LIST_NAMES[sel]); break;
    case P_WAIT: {   /* milliseconds as the fuzzer wrote them, but never long enough to stall it */
        char w[24];
        size_t k = 0;
        while (k < pn && k < 9 && param[k] >= '0' && param[k] <= '9') k++;
        if (k == pn && k > 0) {
            memcpy(w, param, k);
            w[k] = '\0';
            snprintf(w, sizeof w, "%ld", strtol(w, NULL, 10) % 1001);
            puts_(&r->b, w);
        } else {
            put_url(&r->b, param, pn);
        }
        break;
    }
    default: break;
    }
    puts_(&r->b, rt->post);
    if (rt->slot == P_NONE || rt->slot == P_NAME || rt->slot == P_LIST) {
        if (pn) {   /* the parameter is the query string */
            puts_(&r->b, query ? "&" : "?");
            put_url(&r->b, param, pn);
            query = 1;
        }
    }
    if (auth == 7) {   /* the alert stream's way (EventSource); elsewhere it must not count */
        puts_(&r->b, query || memchr(r->b.p, '?', r->b.len) ? "&" : "?");
        putf(&r->b, "access_token=%s", TOKENS[sel & 1 ? 3 : 1]);
    }
    putf(&r->b, " HTTP/1.%d\r\n", http10 ? 0 : 1);
    size_t l1 = r->b.len - 2;
    snprintf(r->line, sizeof r->line, "%.*s", (int)(l1 < sizeof r->line ? l1 : sizeof r->line - 1), r->b.p);
    puts_(&r->b, "Host: 127.0.0.1\r\nConnection: close\r\n");
    if (auth >= 1 && auth <= 4) putf(&r->b, "Authorization: Bearer %s\r\n", TOKENS[auth - 1]);
    else if (auth == 5) puts_(&r->b, "Authorization: Bearer fz-unknown-0000\r\n");
    else if (auth == 6) putf(&r->b, "Authorization: Bearer %s\r\n", TOKENS[4]);
    const char *ct = CTYPES[(flags >> 3) & 3];
    if (ct) putf(&r->b, "Content-Type: %s\r\n", ct);
    if (r->sse && bn) {   /* the stream: the body's first line is Last-Event-ID */
        const unsigned char *e = memchr(body, '\n', bn);
        puts_(&r->b, "Last-Event-ID: ");
        put_header_value(&r->b, body, e ? (size_t)(e - body) : bn);
        puts_(&r->b, "\r\n");
        bn = 0;
    }
    if (chunked && bn) {
        puts_(&r->b, "Transfer-Encoding: chunked\r\n\r\n");
        size_t half = bn / 2;
        if (half) {
            putf(&r->b, "%zx\r\n", half);
            put(&r->b, body, half);
            puts_(&r->b, "\r\n");
        }
        putf(&r->b, "%zx\r\n", bn - half);
        put(&r->b, body + half, bn - half);
        puts_(&r->b, "\r\n0\r\n\r\n");
    } else {
        if (bn || !strcmp(rt->method, "POST") || !strcmp(rt->method, "PUT")) putf(&r->b, "Content-Length: %zu\r\n", bn);
        puts_(&r->b, "\r\n");
        if (bn) put(&r->b, body, bn);
    }
    free(rest);
}

/* ---- one exchange ----------------------------------------------------------------------- */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The final answer in b[0..n): past any 1xx interim one (100 Continue). */
static const char *final_answer(const char *b, size_t n) {
    const char *p = b;
    while ((size_t)(p - b) + 12 <= n && memcmp(p, "HTTP/1.", 7) == 0 && p[9] == '1') {
        const char *e = memmem(p, n - (size_t)(p - b), "\r\n\r\n", 4);
        if (!e) break;
        p = e + 4;
    }
    return p;
}

/* 1 when b[0..n) holds a whole answer with a Content-Length (a raw request
 * may keep the connection open after it). */
static int whole(const char *b, size_t n) {
    const char *p = final_answer(b, n);
    n -= (size_t)(p - b);
    const char *he = memmem(p, n, "\r\n\r\n", 4);
    if (!he) return 0;
    for (const char *h = p; h < he; h++) {
        if (h[0] == '\n' && strncasecmp(h + 1, "Content-Length:", 15) == 0) {
            size_t cl = strtoul(h + 16, NULL, 10);
            return n - (size_t)(he + 4 - p) >= cl;
        }
    }
    return 0;
}

/* Send req, read the answer into *out until the server closes, the deadline
 * passes (-1 returned) or, when sse is set and the answer is an event
 * stream, its headers are in. */
static int exchange(const char *req, size_t len, int sse, int half_close, int deadline_ms, buf *out) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) abort();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;   /* no 40 ms delayed ACK between the answer's head and body: thousands of requests a minute */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    int64_t end = now_ms() + deadline_ms;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        fprintf(stderr, "fuzz_http: connect: %s — the server is gone\n", strerror(errno));
        abort();
    }
    size_t sent = 0;
    int rc = 0, wr_open = 1;
    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0) {
            rc = -1;
            break;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (wr_open ? POLLOUT : 0)};
        if (poll(&p, 1, (int)left) < 0) {
            if (errno == EINTR) continue;
            abort();
        }
        if (wr_open && (p.revents & POLLOUT)) {
            if (sent < len) {
                ssize_t n = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
                if (n > 0) sent += (size_t)n;
                else if (n < 0 && errno != EAGAIN && errno != EINTR) wr_open = 0;   /* closed early (413, 400) */
            }
            if (sent == len && wr_open) {
                /* a raw request that is incomplete ends here; not the others:
                 * libmicrohttpd takes a half-closed connection for a client
                 * that went away (a suspended ?wait request is then dropped) */
                if (half_close) shutdown(fd, SHUT_WR);
                wr_open = 0;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char t[65536];
            ssize_t n = recv(fd, t, sizeof t, 0);
            setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);   /* it does not stay on */
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (n <= 0) break;   /* closed, or reset */
            if (out->len + (size_t)n <= ANSWER_MAX) put(out, t, (size_t)n);
            if (sse && out->len >= 12 && memmem(out->p, out->len, "\r\n\r\n", 4) &&
                strstr(out->p, "text/event-stream"))
                break;   /* a stream never ends: its headers are enough */
            if (whole(out->p, out->len)) break;
        }
    }
    close(fd);
    return rc;
}

/* ---- checking the answer ------------------------------------------------------------------ */

typedef struct answer {
    int status;
    const char *headers;   /* inside the answer buffer */
    size_t hlen;
    char *body;            /* de-chunked, NUL-terminated; owned */
    size_t blen;
} answer;

static const char *header(const answer *a, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    const char *p = a->headers, *e = a->headers + a->hlen;
    while (p < e) {
        const char *le = memmem(p, (size_t)(e - p), "\r\n", 2);
        if (!le) le = e;
        if ((size_t)(le - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < le && *v == ' ') v++;
            *vlen = (size_t)(le - v);
            return v;
        }
        p = le + 2;
    }
    return NULL;
}

static void fail(const request *r, const buf *ans, const char *why) {
    const char *dump = getenv("FUZZ_HTTP_DUMP");   /* the whole request and answer, for a long answer */
    FILE *f = dump ? fopen(dump, "wb") : NULL;
    if (f) {
        fwrite(r->b.p ? r->b.p : "", 1, r->b.len, f);
        fputs("\n--- answer ---\n", f);
        fwrite(ans->p ? ans->p : "", 1, ans->len, f);
        fclose(f);
    }
    fprintf(stderr, "\nfuzz_http: %s\n--- request (%zu bytes) ---\n%.*s\n--- answer (%zu bytes) ---\n%.*s\n---\n", why,
            r->b.len, (int)(r->b.len < 4000 ? r->b.len : 4000), r->b.p ? r->b.p : "", ans->len,
            (int)(ans->len < 4000 ? ans->len : 4000), ans->p ? ans->p : "");
    abort();
}

/* Parse the answer; 0 when it has no complete head (cut or none). */
static int parse(const buf *ans, int head, answer *a) {
    memset(a, 0, sizeof *a);
    const char *sl = ans->len ? final_answer(ans->p, ans->len) : NULL;
    size_t n = sl ? ans->len - (size_t)(sl - ans->p) : 0;
    if (n < 12 || memcmp(sl, "HTTP/1.", 7) != 0) return 0;
    if (!(sl[7] == '0' || sl[7] == '1') || sl[8] != ' ' || sl[9] < '1' || sl[9] > '5' || sl[10] < '0' || sl[10] > '9' ||
        sl[11] < '0' || sl[11] > '9')
        return -1;
    a->status = (sl[9] - '0') * 100 + (sl[10] - '0') * 10 + (sl[11] - '0');
    const char *he = memmem(sl, n, "\r\n\r\n", 4);
    if (!he) return 0;
    const char *l1 = memmem(sl, n, "\r\n", 2);
    a->headers = l1 + 2;
    a->hlen = (size_t)(he - a->headers) + 2;
    const char *b = he + 4;
    size_t bn = n - (size_t)(b - sl), vl;
    a->body = calloc(1, bn + 1);
    if (head) return 1;
    const char *te = header(a, "Transfer-Encoding", &vl);
    if (te && vl >= 7 && strncasecmp(te, "chunked", 7) == 0) {
        size_t i = 0;
        while (i < bn) {
            char *e;
            unsigned long n = strtoul(b + i, &e, 16);
            const char *crlf = memmem(b + i, bn - i, "\r\n", 2);
            if (!crlf || e == b + i) break;
            i = (size_t)(crlf - b) + 2;
            if (n == 0 || n > bn - i) break;
            memcpy(a->body + a->blen, b + i, n);
            a->blen += n;
            i += n + 2;
        }
    } else {
        memcpy(a->body, b, bn);
        a->blen = bn;
    }
    return 1;
}

/* libmicrohttpd's own answers (a request it refused before any handler):
 * every answer of vigil has a Content-Type, libmicrohttpd's have none (an
 * HTML body; 0.9.75 sometimes sends its head twice). */
static int from_mhd(const answer *a) {
    size_t vl;
    return !header(a, "Content-Type", &vl);
}

static void check(const request *r, const buf *ans, int timed_out) {
    for (int t = 0; t < NTOKENS; t++)
        if (ans->len && memmem(ans->p, ans->len, TOKENS[t], strlen(TOKENS[t]))) fail(r, ans, "a token appears in the answer");
    answer a;
    int ok = parse(ans, r->head, &a);
    if (ok < 0) fail(r, ans, "a malformed status line");
    if (ok == 0) {
        free(a.body);
        if (r->raw) return;   /* an incomplete or malformed request: closed, or left waiting */
        fail(r, ans, timed_out ? "no answer within the deadline (a hang?)" : "the server closed without an answer");
    }
    if (verbose) fprintf(stderr, "fuzz_http: %s -> %d\n", r->raw ? "(raw)" : r->line, a.status);
    if (a.status == 500) fail(r, ans, "500 Internal Server Error");
    size_t vl;
    if (from_mhd(&a)) {
        static const int ok_mhd[] = {400, 403, 404, 405, 411, 413, 414, 417, 431, 501, 505};
        int found = 0;
        for (size_t i = 0; i < sizeof ok_mhd / sizeof ok_mhd[0]; i++) found |= a.status == ok_mhd[i];
        if (!found) fail(r, ans, "libmicrohttpd answered with a status it does not document");
        if (!r->raw && a.status != 413 && a.status != 431) fail(r, ans, "libmicrohttpd refused a well-formed request");
        free(a.body);
        return;
    }
    const char *ct = header(&a, "Content-Type", &vl);
    if (a.status >= 400) {
        if (!ct || vl < 24 || strncmp(ct, "application/problem+json", 24) != 0)
            fail(r, ans, "an error without Content-Type: application/problem+json");
        if (!r->head) {
            cJSON *o = cJSON_ParseWithLength(a.body, a.blen);
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
            const cJSON *ti = cJSON_GetObjectItemCaseSensitive(o, "title");
            int good = cJSON_IsObject(o) && cJSON_IsNumber(st) && st->valuedouble == a.status && cJSON_IsString(ti);
            cJSON_Delete(o);
            if (!good) fail(r, ans, "a problem+json body that is not JSON, or without title and the status");
        }
    }
    if (a.status == 401) {
        const char *w = header(&a, "WWW-Authenticate", &vl);
        if (!w || vl < 6 || strncmp(w, "Bearer", 6) != 0) fail(r, ans, "401 without WWW-Authenticate: Bearer");
    }
    if (a.status < 300 && !r->head && ct && vl >= 16 && strncmp(ct, "application/json", 16) == 0) {
        cJSON *o = cJSON_ParseWithLength(a.body, a.blen);
        if (!o) fail(r, ans, "an application/json body that does not parse");
        cJSON_Delete(o);
    }
    if (r->change && a.status < 300) changes++;
    free(a.body);
}

static void health(void) {
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    buf ans = {0};
    int rc = exchange(req, sizeof req - 1, 0, 0, DEADLINE_MS, &ans);
    if (rc != 0 || ans.len < 12 || memcmp(ans.p + 9, "200", 3) != 0) {
        request r = {.line = "GET /healthz"};
        put(&r.b, req, sizeof req - 1);
        fail(&r, &ans, "/healthz does not answer 200");
    }
    free(ans.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (++inputs % RESTART_INPUTS == 0 || changes >= RESTART_CHANGES) {   /* bound what accumulates */
        vigil_server_stop(srv);
        start_server();
    }
    request r = {0};
    build(&r, data, size);
    if (r.b.len == 0) {
        free(r.b.p);
        return 0;
    }
    buf ans = {0};
    int64_t t0 = now_ms();
    int rc = exchange(r.b.p, r.b.len, 1, r.raw, r.raw ? RAW_DEADLINE_MS : DEADLINE_MS, &ans);
    if (verbose)
        fprintf(stderr, "fuzz_http: %lld ms%s %.60s\n", (long long)(now_ms() - t0), rc ? " (deadline)" : "",
                r.raw ? r.b.p : r.line);
    check(&r, &ans, rc != 0);
    free(ans.p);
    free(r.b.p);
    if (inputs % HEALTH_EVERY == 0) health();
    return 0;
}
