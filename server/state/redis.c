/* redis.c — the server's one Redis connection layer (redis.h).
 *
 * The state stage of the flow (and the alert outbox behind it) reaches
 * Redis only through here: the URL, connecting with timeouts, AUTH and
 * SELECT, dropping a broken connection and reconnecting on the next call,
 * SIGPIPE, pipelining, the round-trip counters and the mapping of hiredis'
 * errors to vigil_status (STYLE.md: one status enum, mapped once at each
 * library boundary). Before, redis_store.c and outbox_redis.c each did all
 * of this, with drifting details.
 *
 * hiredis' synchronous API pipelines naturally: redisAppendCommandArgv only
 * fills the output buffer; the first redisGetReply writes it all and then
 * reads replies in order. After any connection-level failure the context
 * is freed, so a half-written pipeline never stays in a buffer. */
#include "redis.h"

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define DEFAULT_CONNECT_MS 2000
#define DEFAULT_IO_MS 5000
#define PING_TIMEOUT_MS 1000

struct vigil_redis {
    char host[256];
    int port, db;
    char user[128], password[256];
    char where[300];           /* "host:port" */
    int connect_ms, io_ms, wait_ms;
    redisContext *c;           /* NULL while disconnected */
    int pending;               /* replies due for what was appended */
    int fresh;                 /* appended since the last read: next read is a new round trip */
    int unsent;                /* the last transport error left bytes unsent */
    vigil_redis_counters n;
};

static struct timeval ms_tv(int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    return tv;
}

/* hiredis 0.14 writes with write(2): a server that closed the connection
 * would raise SIGPIPE and kill the process. Every entry point that does I/O
 * blocks SIGPIPE in the calling thread and swallows one it caused, so the
 * layer is safe whatever the process' signal disposition. */
typedef struct pipe_guard {
    sigset_t old;
    int was_pending;
} pipe_guard;

static void pipe_block(pipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void pipe_unblock(pipe_guard *g)
{
    if (!g->was_pending) {
        sigset_t pending;
        sigemptyset(&pending);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGPIPE);
            struct timespec zero = { 0, 0 };
            sigtimedwait(&set, NULL, &zero);
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- URL ---------------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out (size outn, NUL-terminated). 0 on success. */
static int pct_decode(const char *s, size_t n, char *out, size_t outn)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= outn)
            return -1;
        out[o++] = ch;
    }
    if (outn)
        out[o] = '\0';
    return 0;
}

static int parse_int(const char *s, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The URL as error messages show it: the user information (user:password)
 * replaced by "***". Up to the last '@', so a password with an unencoded '/'
 * or '#' is hidden as well. */
static void redact(const char *url, char *out, size_t n)
{
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    const char *at = strrchr(auth, '@');
    if (!at)
        snprintf(out, n, "%s", url);
    else
        snprintf(out, n, "%.*s***%s", (int)(auth - url), url, at);
}

vigil_status vigil_redis_url_parse(const char *url, char *host, size_t hostn, int *port, int *db,
                                   char *user, size_t usern, char *password, size_t passwordn,
                                   vigil_error *err)
{
    char hbuf[256], ubuf[128], pbuf[256], shown[256];
    if (!url || !*url)
        return vigil_error_set(err, VIGIL_EPARSE, "empty Redis URL (expected redis://host:port[/db])");
    redact(url, shown, sizeof shown);
    const char *s = url;
    const char *sep = strstr(s, "://");
    if (sep) {
        size_t sl = (size_t)(sep - s);
        if (!(sl == 5 && strncasecmp(s, "redis", 5) == 0)) {
            if (sl == 6 && strncasecmp(s, "rediss", 6) == 0)
                return vigil_error_set(err, VIGIL_EPARSE,
                                       "Redis URL '%s': rediss:// (TLS) is not supported by hiredis 0.14",
                                       shown);
            return vigil_error_set(err, VIGIL_EPARSE,
                                   "Redis URL '%s': unknown scheme (expected redis://host:port[/db])", shown);
        }
        s = sep + 3;
    }
    /* authority = s up to '/' or end */
    const char *end = s + strcspn(s, "/?#");
    if (*end == '?' || *end == '#')
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': query and fragment are not supported", shown);
    const char *at = NULL;
    for (const char *q = s; q < end; q++)
        if (*q == '@')
            at = q;
    ubuf[0] = pbuf[0] = '\0';
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        int bad;
        if (colon)
            bad = pct_decode(s, (size_t)(colon - s), ubuf, sizeof ubuf) ||
                  pct_decode(colon + 1, (size_t)(at - colon - 1), pbuf, sizeof pbuf);
        else   /* "redis://secret@host": a bare userinfo is the password */
            bad = pct_decode(s, (size_t)(at - s), pbuf, sizeof pbuf);
        if (bad)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL: bad or too long user/password");
        s = at + 1;
    }
    const char *hs = s, *he;
    const char *portp = NULL;
    if (*s == '[') {
        he = memchr(s, ']', (size_t)(end - s));
        if (!he)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': unterminated '[' in host", shown);
        hs = s + 1;
        if (he + 1 < end) {
            if (he[1] != ':')
                return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': junk after ']'", shown);
            portp = he + 2;
        }
    } else {
        he = memchr(s, ':', (size_t)(end - s));
        if (he)
            portp = he + 1;
        else
            he = end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0)
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': no host (expected redis://host:port[/db])", shown);
    if (hl >= sizeof hbuf)
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL: host name too long");
    memcpy(hbuf, hs, hl);
    hbuf[hl] = '\0';
    long pv = 6379, dv = 0;
    if (portp && parse_int(portp, (size_t)(end - portp), 1, 65535, &pv) != 0)
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': port must be 1..65535", shown);
    if (*end == '/') {
        const char *d = end + 1;
        size_t dl = strlen(d);
        if (dl > 0 && parse_int(d, dl, 0, 1000000, &dv) != 0)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': database must be a number", shown);
    }
    if (host) {
        if (hostn <= hl)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL: host name too long");
        memcpy(host, hbuf, hl + 1);
    }
    if (port) *port = (int)pv;
    if (db) *db = (int)dv;
    if (user && usern) {
        if (strlen(ubuf) >= usern)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL: user name too long");
        memcpy(user, ubuf, strlen(ubuf) + 1);
    }
    if (password && passwordn) {
        if (strlen(pbuf) >= passwordn)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL: password too long");
        memcpy(password, pbuf, strlen(pbuf) + 1);
    }
    return VIGIL_OK;
}


/* Append s percent-encoded (all but RFC 3986 unreserved bytes) at out+*o. */
static void pct_encode(const char *s, char *out, size_t *o)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            out[(*o)++] = (char)*p;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 15];
        }
    }
}

vigil_status vigil_redis_url_with_auth(const char *url, const char *user, const char *password, char **out,
                                       vigil_error *err)
{
    *out = NULL;
    int has_user = user && *user, has_pass = password && *password;
    if (has_user && !has_pass)
        return vigil_error_set(err, VIGIL_EPARSE, "redis.user is set without redis.password; set both "
                                                  "(VIGIL_REDIS_USER, VIGIL_REDIS_PASSWORD)");
    vigil_status s = vigil_redis_url_parse(url, NULL, 0, NULL, NULL, NULL, 0, NULL, 0, err);
    if (s != VIGIL_OK)
        return s;
    size_t n = strlen(url) + 3 * ((has_user ? strlen(user) : 0) + (has_pass ? strlen(password) : 0)) + 16;
    char *u = malloc(n);
    if (!u)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis: out of memory");
    if (!has_pass) {
        memcpy(u, url, strlen(url) + 1);
        *out = u;
        return VIGIL_OK;
    }
    /* scheme, then the new user information, then the URL after its old one */
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    const char *end = auth + strcspn(auth, "/?#"), *rest = auth;
    for (const char *q = auth; q < end; q++)
        if (*q == '@')
            rest = q + 1;
    size_t o = 0;
    if (sep) {
        memcpy(u, url, (size_t)(auth - url));
        o = (size_t)(auth - url);
    } else {
        memcpy(u, "redis://", 8);
        o = 8;
    }
    if (has_user)
        pct_encode(user, u, &o);
    u[o++] = ':';
    pct_encode(password, u, &o);
    u[o++] = '@';
    memcpy(u + o, rest, strlen(rest) + 1);
    *out = u;
    return VIGIL_OK;
}

void vigil_redis_url_free(char *url)
{
    if (!url)
        return;
    volatile char *p = url;   /* the password is in it: wipe before free */
    for (size_t i = 0; p[i]; i++)
        p[i] = 0;
    free(url);
}

/* ---- handles ------------------------------------------------------------ */

static void set_where(vigil_redis *r)
{
    if (strchr(r->host, ':'))   /* IPv6 */
        snprintf(r->where, sizeof r->where, "[%s]:%d", r->host, r->port);
    else
        snprintf(r->where, sizeof r->where, "%s:%d", r->host, r->port);
}

vigil_status vigil_redis_create(const char *url, const vigil_redis_opts *opts, vigil_redis **out,
                                vigil_error *err)
{
    if (!out)
        return vigil_error_set(err, VIGIL_EINVAL, "vigil_redis_create: out is NULL");
    *out = NULL;
    vigil_redis *r = calloc(1, sizeof *r);
    if (!r)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis: out of memory");
    vigil_status s = vigil_redis_url_parse(url, r->host, sizeof r->host, &r->port, &r->db, r->user,
                                           sizeof r->user, r->password, sizeof r->password, err);
    if (s != VIGIL_OK) {
        vigil_redis_destroy(r);
        return s;
    }
    r->connect_ms = (opts && opts->connect_timeout_ms > 0) ? opts->connect_timeout_ms : DEFAULT_CONNECT_MS;
    r->io_ms = (opts && opts->io_timeout_ms > 0) ? opts->io_timeout_ms : DEFAULT_IO_MS;
    set_where(r);
    *out = r;
    return VIGIL_OK;
}

vigil_status vigil_redis_clone(const vigil_redis *r, vigil_redis **out, vigil_error *err)
{
    if (!r || !out)
        return vigil_error_set(err, VIGIL_EINVAL, "vigil_redis_clone: NULL argument");
    vigil_redis *c = calloc(1, sizeof *c);
    if (!c)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis: out of memory");
    memcpy(c->host, r->host, sizeof c->host);
    memcpy(c->user, r->user, sizeof c->user);
    memcpy(c->password, r->password, sizeof c->password);
    memcpy(c->where, r->where, sizeof c->where);
    c->port = r->port;
    c->db = r->db;
    c->connect_ms = r->connect_ms;
    c->io_ms = r->io_ms;
    *out = c;
    return VIGIL_OK;
}

void vigil_redis_destroy(vigil_redis *r)
{
    if (!r)
        return;
    vigil_redis_disconnect(r);
    /* a volatile pointer, so the wipe is not optimised away */
    volatile char *p = r->password;
    for (size_t i = 0; i < sizeof r->password; i++)
        p[i] = 0;
    free(r);
}

int vigil_redis_connected(const vigil_redis *r)
{
    return r && r->c != NULL;
}

const char *vigil_redis_where(const vigil_redis *r)
{
    return r ? r->where : "";
}

void vigil_redis_get_counters(const vigil_redis *r, vigil_redis_counters *out)
{
    if (!out)
        return;
    if (r)
        *out = r->n;
    else
        memset(out, 0, sizeof *out);
}

/* ---- connection --------------------------------------------------------- */

/* Send one setup command (AUTH, SELECT, PING) and expect a status reply. */
static vigil_status setup_cmd(vigil_redis *r, redisContext *c, int argc, const char **argv,
                              const size_t *lens, const char *expect, const char *what, vigil_error *err)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, lens);
    if (!rep)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s: %s failed: %s", r->where, what,
                               c->errstr[0] ? c->errstr : "connection lost");
    vigil_status s = VIGIL_OK;
    if (rep->type == REDIS_REPLY_ERROR)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: %s refused: %.*s%s", r->where, what,
                            (int)rep->len, rep->str,
                            strcmp(what, "AUTH") == 0 ? " (check redis.user and redis.password, or the "
                                                        "URL's user:password)" : "");
    else if (rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, expect) != 0)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s: unexpected reply to %s", r->where, what);
    freeReplyObject(rep);
    return s;
}

static vigil_status do_connect(vigil_redis *r, vigil_error *err)
{
    redisContext *c = redisConnectWithTimeout(r->host, r->port, ms_tv(r->connect_ms));
    if (!c)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis: cannot allocate a connection");
    if (c->err) {
        vigil_status s = vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s unreachable: %s", r->where,
                                         c->errstr);
        redisFree(c);
        return s;
    }
    if (redisSetTimeout(c, ms_tv(r->io_ms + r->wait_ms)) != REDIS_OK) {
        redisFree(c);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s: cannot set socket timeout", r->where);
    }
    redisEnableKeepAlive(c);
    vigil_status s = VIGIL_OK;
    if (r->password[0]) {
        const char *av[3];
        size_t al[3];
        int ac = 0;
        av[ac] = "AUTH"; al[ac++] = 4;
        if (r->user[0]) {
            av[ac] = r->user; al[ac++] = strlen(r->user);
        }
        av[ac] = r->password; al[ac++] = strlen(r->password);
        s = setup_cmd(r, c, ac, av, al, "OK", "AUTH", err);
    }
    if (s == VIGIL_OK && r->db != 0) {
        char dbs[16];
        int n = snprintf(dbs, sizeof dbs, "%d", r->db);
        const char *av[2] = { "SELECT", dbs };
        size_t al[2] = { 6, (size_t)n };
        s = setup_cmd(r, c, 2, av, al, "OK", "SELECT", err);
    }
    if (s != VIGIL_OK) {
        redisFree(c);
        return s;
    }
    r->c = c;
    r->pending = 0;
    r->fresh = 0;
    if (r->n.connects++ > 0)
        r->n.reconnects++;
    return VIGIL_OK;
}

vigil_status vigil_redis_connect(vigil_redis *r, vigil_error *err)
{
    if (!r)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis: no connection handle");
    if (r->c)
        return VIGIL_OK;
    pipe_guard g;
    pipe_block(&g);
    vigil_status s = do_connect(r, err);
    pipe_unblock(&g);
    return s;
}

void vigil_redis_disconnect(vigil_redis *r)
{
    if (r && r->c) {
        redisFree(r->c);
        r->c = NULL;
    }
    if (r) {
        r->pending = 0;
        r->fresh = 0;
    }
}

void vigil_redis_set_wait(vigil_redis *r, int wait_ms)
{
    if (!r)
        return;
    r->wait_ms = wait_ms > 0 ? wait_ms : 0;
    if (r->c)
        redisSetTimeout(r->c, ms_tv(r->io_ms + r->wait_ms));
}

/* A transport error: say what happened, remember whether bytes were left
 * unsent, drop the context so the next call reconnects. */
static vigil_status transport_failed(vigil_redis *r, const char *what, vigil_error *err)
{
    const char *why = (r->c && r->c->errstr[0]) ? r->c->errstr : "connection lost";
    r->unsent = r->c && r->c->obuf && sdslen(r->c->obuf) > 0;
    r->n.failures++;
    vigil_status s = vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s: %s: %s", r->where, what, why);
    vigil_redis_disconnect(r);
    return s;
}

/* ---- pipelining --------------------------------------------------------- */

vigil_status vigil_redis_append(vigil_redis *r, const vigil_redis_cmd *cmd, vigil_error *err)
{
    if (!r || !cmd || cmd->argc <= 0 || !cmd->argv || !cmd->lens)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis: empty command");
    vigil_status s = vigil_redis_connect(r, err);
    if (s != VIGIL_OK)
        return s;
    if (redisAppendCommandArgv(r->c, cmd->argc, cmd->argv, cmd->lens) != REDIS_OK)
        return transport_failed(r, "cannot queue a command", err);
    r->pending++;
    r->fresh = 1;
    return VIGIL_OK;
}

void vigil_redis_batch_reset(vigil_redis_batch *b)
{
    b->len = 0;
    b->ncmds = 0;
    b->failed = 0;
}

void vigil_redis_batch_free(vigil_redis_batch *b)
{
    free(b->buf);
    memset(b, 0, sizeof *b);
}

static int batch_room(vigil_redis_batch *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    char *nb = realloc(b->buf, cap);
    if (!nb) {
        b->failed = 1;
        return 0;
    }
    b->buf = nb;
    b->cap = cap;
    return 1;
}

size_t vigil_redis_fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t k = 0, o = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k)
        buf[o++] = tmp[--k];
    return o;
}

size_t vigil_redis_fmt_i64(char *buf, int64_t v)
{
    if (v >= 0)
        return vigil_redis_fmt_u64(buf, (uint64_t)v);
    buf[0] = '-';
    return 1 + vigil_redis_fmt_u64(buf + 1, 0 - (uint64_t)v);   /* INT64_MIN too */
}

/* "<c><n>\r\n" at p; returns the bytes written (at most 23) */
static size_t resp_head(char *p, char c, size_t n)
{
    p[0] = c;
    size_t o = 1 + vigil_redis_fmt_u64(p + 1, n);
    p[o++] = '\r';
    p[o++] = '\n';
    return o;
}

void vigil_redis_batch_add(vigil_redis_batch *b, int argc, const char *const *argv, const size_t *lens)
{
    if (b->failed || argc <= 0)
        return;
    size_t need = 23;
    for (int i = 0; i < argc; i++)
        need += 23 + lens[i] + 2;
    if (!batch_room(b, need))
        return;
    char *p = b->buf + b->len;
    p += resp_head(p, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        p += resp_head(p, '$', lens[i]);
        if (lens[i])
            memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    b->len = (size_t)(p - b->buf);
    b->ncmds++;
}

vigil_status vigil_redis_append_batch(vigil_redis *r, const vigil_redis_batch *b, vigil_error *err)
{
    if (!r || !b || b->failed)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis: out of memory formatting a pipeline");
    if (!b->ncmds)
        return VIGIL_OK;
    vigil_status s = vigil_redis_connect(r, err);
    if (s != VIGIL_OK)
        return s;
    if (redisAppendFormattedCommand(r->c, b->buf, b->len) != REDIS_OK)
        return transport_failed(r, "cannot queue a pipeline", err);
    r->pending += b->ncmds;
    r->fresh = 1;
    return VIGIL_OK;
}

vigil_status vigil_redis_flush(vigil_redis *r, vigil_error *err)
{
    if (!r || !r->c)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis: not connected");
    pipe_guard g;
    pipe_block(&g);
    int done = 0;
    vigil_status s = VIGIL_OK;
    while (!done && s == VIGIL_OK)
        if (redisBufferWrite(r->c, &done) != REDIS_OK)
            s = transport_failed(r, "write", err);
    pipe_unblock(&g);
    return s;
}

vigil_status vigil_redis_read(vigil_redis *r, redisReply **reply, const char *what, vigil_error *err)
{
    if (!reply)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis: no place for the reply");
    *reply = NULL;
    if (!r || !r->c || r->pending <= 0)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis: no reply is due");
    if (r->fresh) {
        r->n.round_trips++;
        r->fresh = 0;
    }
    /* Only a write can raise SIGPIPE, and redisGetReply writes only while
     * the output buffer holds something: the first read of a round trip.
     * The others skip the guard's system calls (50 000 GETs, one guard). */
    int writes = r->c->obuf && sdslen(r->c->obuf) > 0;
    pipe_guard g;
    if (writes)
        pipe_block(&g);
    void *v = NULL;
    vigil_status s = VIGIL_OK;
    if (redisGetReply(r->c, &v) != REDIS_OK || !v)
        s = transport_failed(r, what ? what : "read", err);
    else
        r->pending--;
    if (writes)
        pipe_unblock(&g);
    *reply = v;
    return s;
}

int vigil_redis_unsent(const vigil_redis *r)
{
    return r ? r->unsent : 0;
}

void vigil_redis_free_replies(redisReply **replies, int n)
{
    for (int i = 0; replies && i < n; i++)
        if (replies[i]) {
            freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
}

vigil_status vigil_redis_pipeline(vigil_redis *r, const vigil_redis_cmd *cmds, int n, redisReply **replies,
                                  const char *what, vigil_error *err)
{
    if (!r || n < 0 || (n > 0 && (!cmds || !replies)))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis: bad pipeline");
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    if (r->pending) /* a caller left replies unread: start clean */
        vigil_redis_disconnect(r);
    vigil_status s = VIGIL_OK;
    for (int i = 0; i < n && s == VIGIL_OK; i++)
        s = vigil_redis_append(r, &cmds[i], err);
    if (s != VIGIL_OK) {
        vigil_redis_disconnect(r);
        return s;
    }
    for (int i = 0; i < n; i++) {
        s = vigil_redis_read(r, &replies[i], what, err);
        if (s != VIGIL_OK) {
            vigil_redis_free_replies(replies, i);
            return s;
        }
    }
    return VIGIL_OK;
}

vigil_status vigil_redis_command(vigil_redis *r, const vigil_redis_cmd *cmd, redisReply **reply,
                                 const char *what, vigil_error *err)
{
    if (!reply)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis: no place for the reply");
    return vigil_redis_pipeline(r, cmd, 1, reply, what, err);
}

vigil_status vigil_redis_reply_check(const vigil_redis *r, const redisReply *reply, const char *what,
                                     vigil_error *err)
{
    if (reply && reply->type == REDIS_REPLY_ERROR)
        return vigil_error_set(err, VIGIL_ESTORE, "Redis %s: %s: %.*s", vigil_redis_where(r),
                               what ? what : "command", (int)reply->len, reply->str ? reply->str : "");
    return VIGIL_OK;
}

int vigil_redis_reply_is(const redisReply *reply, const char *code)
{
    size_t n = code ? strlen(code) : 0;
    return reply && reply->type == REDIS_REPLY_ERROR && reply->str && reply->len >= n &&
           strncmp(reply->str, code, n) == 0;
}

/* ---- health ------------------------------------------------------------- */

vigil_status vigil_redis_ping(const char *url, vigil_error *err)
{
    vigil_redis_opts o = { PING_TIMEOUT_MS, PING_TIMEOUT_MS };
    vigil_redis *r = NULL;
    vigil_status s = vigil_redis_create(url, &o, &r, err);
    if (s != VIGIL_OK)
        return s;
    pipe_guard g;
    pipe_block(&g);
    s = do_connect(r, err);
    if (s == VIGIL_OK) {
        const char *av[1] = { "PING" };
        size_t al[1] = { 4 };
        s = setup_cmd(r, r->c, 1, av, al, "PONG", "PING", err);
    }
    pipe_unblock(&g);
    vigil_redis_destroy(r);
    return s;
}
