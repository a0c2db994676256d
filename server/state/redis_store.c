/* redis_store.c — vigil_store over Redis (hiredis 0.14, synchronous, pipelined).
 *
 * The state stage of the flow when vigil runs with --redis: see redis_store.h
 * for the key layout, the one-round-trip-per-call rule and the error model.
 * hiredis' synchronous API pipelines naturally: redisAppendCommandArgv only
 * fills the output buffer; the first redisGetReply writes it all and then
 * reads replies in order. A request is validated completely before anything
 * is appended, and after any connection-level failure the context is freed,
 * so a half-written pipeline never stays in a buffer: the next call starts on
 * a fresh connection. */
#include "redis_store.h"
#include "server/common/fault.h"
#include "server/alerts/outbox.h"
#include "vigil/event.h"

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#define STORE_MAGIC 0x56524453u   /* "VRDS" */
#define DEFAULT_CONNECT_MS 2000
#define DEFAULT_IO_MS 5000
#define PING_TIMEOUT_MS 1000

typedef struct redis_store {
    vigil_store base;          /* first: a vigil_store* is a redis_store* */
    uint32_t magic;
    char host[256];
    int port, db;
    char user[128], password[256];
    char *prefix;              /* owned */
    size_t prefixlen;
    int connect_ms, io_ms;
    redisContext *c;           /* NULL while disconnected */
    int connected_once;
    vigil_redis_stats stats;
    char keybuf[VIGIL_REDIS_MAX_KEY];
    int partitions;            /* 0: tag {group}; else {group:p<hash % partitions>} */
    redisReply **replies;      /* load(): replies held until all are checked */
    size_t replies_cap;
} redis_store;

static struct timeval ms_tv(int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    return tv;
}

/* hiredis 0.14 writes with write(2): a server that closed the connection
 * would raise SIGPIPE and kill the process. Every entry point that does I/O
 * blocks SIGPIPE in the calling thread and swallows one it caused, so the
 * store is safe whatever the process' signal disposition. */
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

vigil_status vigil_redis_url_parse(const char *url, char *host, size_t hostn, int *port, int *db,
                                   char *user, size_t usern, char *password, size_t passwordn,
                                   vigil_error *err)
{
    char hbuf[256], ubuf[128], pbuf[256];
    if (!url || !*url)
        return vigil_error_set(err, VIGIL_EPARSE, "empty Redis URL (expected redis://host:port[/db])");
    const char *s = url;
    const char *sep = strstr(s, "://");
    if (sep) {
        size_t sl = (size_t)(sep - s);
        if (!(sl == 5 && strncasecmp(s, "redis", 5) == 0)) {
            if (sl == 6 && strncasecmp(s, "rediss", 6) == 0)
                return vigil_error_set(err, VIGIL_EPARSE,
                                       "Redis URL '%s': rediss:// (TLS) is not supported by hiredis 0.14",
                                       url);
            return vigil_error_set(err, VIGIL_EPARSE,
                                   "Redis URL '%s': unknown scheme (expected redis://host:port[/db])", url);
        }
        s = sep + 3;
    }
    /* authority = s up to '/' or end */
    const char *end = s + strcspn(s, "/?#");
    if (*end == '?' || *end == '#')
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': query and fragment are not supported", url);
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
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': unterminated '[' in host", url);
        hs = s + 1;
        if (he + 1 < end) {
            if (he[1] != ':')
                return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': junk after ']'", url);
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
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': no host (expected redis://host:port[/db])", url);
    if (hl >= sizeof hbuf)
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL: host name too long");
    memcpy(hbuf, hs, hl);
    hbuf[hl] = '\0';
    long pv = 6379, dv = 0;
    if (portp && parse_int(portp, (size_t)(end - portp), 1, 65535, &pv) != 0)
        return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': port must be 1..65535", url);
    if (*end == '/') {
        const char *d = end + 1;
        size_t dl = strlen(d);
        if (dl > 0 && parse_int(d, dl, 0, 1000000, &dv) != 0)
            return vigil_error_set(err, VIGIL_EPARSE, "Redis URL '%s': database must be a number", url);
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

/* ---- connection -------------------------------------------------------- */

/* Send one command and expect +OK (AUTH, SELECT) or +PONG (PING). */
static vigil_status simple_cmd(redisContext *c, int argc, const char **argv, const size_t *lens,
                               const char *expect, const char *what, const char *host, int port,
                               vigil_error *err)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!r)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s:%d: %s failed: %s", host, port, what,
                               c->errstr[0] ? c->errstr : "connection lost");
    vigil_status s = VIGIL_OK;
    if (r->type == REDIS_REPLY_ERROR)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s:%d: %s refused: %.*s", host, port, what,
                            (int)r->len, r->str);
    else if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, expect) != 0)
        s = vigil_error_set(err, VIGIL_ESTORE, "Redis %s:%d: unexpected reply to %s", host, port, what);
    freeReplyObject(r);
    return s;
}

/* Connect, set timeouts, AUTH, SELECT. On success *out is a ready context. */
static vigil_status open_conn(const char *host, int port, int db, const char *user,
                              const char *password, int connect_ms, int io_ms,
                              redisContext **out, vigil_error *err)
{
    *out = NULL;
    redisContext *c = redisConnectWithTimeout(host, port, ms_tv(connect_ms));
    if (!c)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis: cannot allocate a connection");
    if (c->err) {
        vigil_status s = vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s:%d unreachable: %s",
                                         host, port, c->errstr);
        redisFree(c);
        return s;
    }
    if (redisSetTimeout(c, ms_tv(io_ms)) != REDIS_OK) {
        redisFree(c);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s:%d: cannot set socket timeout",
                               host, port);
    }
    redisEnableKeepAlive(c);
    vigil_status s = VIGIL_OK;
    if (password && *password) {
        const char *av[3];
        size_t al[3];
        int ac = 0;
        av[ac] = "AUTH"; al[ac++] = 4;
        if (user && *user) {
            av[ac] = user; al[ac++] = strlen(user);
        }
        av[ac] = password; al[ac++] = strlen(password);
        s = simple_cmd(c, ac, av, al, "OK", "AUTH", host, port, err);
    }
    if (s == VIGIL_OK && db != 0) {
        char dbs[16];
        int n = snprintf(dbs, sizeof dbs, "%d", db);
        const char *av[2] = { "SELECT", dbs };
        size_t al[2] = { 6, (size_t)n };
        s = simple_cmd(c, 2, av, al, "OK", "SELECT", host, port, err);
    }
    if (s != VIGIL_OK) {
        redisFree(c);
        return s;
    }
    *out = c;
    return VIGIL_OK;
}

static void drop_conn(redis_store *rs)
{
    if (rs->c) {
        redisFree(rs->c);
        rs->c = NULL;
    }
}

static vigil_status ensure_conn(redis_store *rs, vigil_error *err)
{
    if (rs->c)
        return VIGIL_OK;
    vigil_status s = open_conn(rs->host, rs->port, rs->db, rs->user, rs->password, rs->connect_ms,
                               rs->io_ms, &rs->c, err);
    if (s == VIGIL_OK) {
        if (rs->connected_once)
            rs->stats.reconnects++;
        rs->connected_once = 1;
    }
    return s;
}

/* A connection-level failure: report it and drop the context so the next
 * call reconnects. */
static vigil_status conn_failed(redis_store *rs, const char *what, vigil_error *err)
{
    const char *why = (rs->c && rs->c->errstr[0]) ? rs->c->errstr : "connection lost";
    vigil_status s = vigil_error_set(err, VIGIL_EUNAVAILABLE, "Redis %s:%d: %s: %s", rs->host,
                                     rs->port, what, why);
    drop_conn(rs);
    return s;
}

/* ---- keys -------------------------------------------------------------- */

static vigil_status check_key(const redis_store *rs, const vigil_store_key *k, vigil_error *err)
{
    if (!k->group_name || (!k->key && k->keylen))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: key without group name or value");
    if (strpbrk(k->group_name, "{}"))
        return vigil_error_set(err, VIGIL_EINVAL,
                               "Redis store: group name '%s' contains '{' or '}' (it is the hash tag)",
                               k->group_name);
    size_t total = rs->prefixlen + 2 + strlen(k->group_name) + 16 + 4 + k->keylen;
    if (total > VIGIL_REDIS_MAX_KEY)
        return vigil_error_set(err, VIGIL_ETOOBIG, "Redis store: key of group '%s' is %zu bytes (max %d)",
                               k->group_name, total, VIGIL_REDIS_MAX_KEY);
    return VIGIL_OK;
}

/* The hash tag's partition suffix ":p<n>" for key (empty without
 * partitions) into buf (>= 16 bytes); returns its length. */
static size_t part_tag(int partitions, const char *key, size_t keylen, char *buf)
{
    if (partitions <= 0)
        return 0;
    unsigned p = (unsigned)(vigil_hash(key, keylen) % (uint64_t)partitions);
    return (size_t)snprintf(buf, 16, ":p%u", p);
}

/* Build "<prefix>:{<group>[:p<n>]}:k:<key>" into buf (the caller checked the size). */
static size_t build_key(const redis_store *rs, const char *group, const char *key, size_t keylen, char *buf)
{
    size_t gl = strlen(group), o = 0;
    char tag[16];
    size_t tl = part_tag(rs->partitions, key, keylen, tag);
    memcpy(buf + o, rs->prefix, rs->prefixlen); o += rs->prefixlen;
    memcpy(buf + o, ":{", 2); o += 2;
    memcpy(buf + o, group, gl); o += gl;
    memcpy(buf + o, tag, tl); o += tl;
    memcpy(buf + o, "}:k:", 4); o += 4;
    if (keylen)
        memcpy(buf + o, key, keylen);
    o += keylen;
    return o;
}

vigil_status vigil_redis_store_key(const vigil_store *st, const char *group_name, const char *key,
                                   size_t keylen, char *buf, size_t n, size_t *len)
{
    const redis_store *rs = (const redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || !group_name || (!key && keylen) || !buf)
        return VIGIL_EINVAL;
    size_t total = rs->prefixlen + 2 + strlen(group_name) + 16 + 4 + keylen;
    if (total > n)
        return VIGIL_ETOOBIG;
    size_t l = build_key(rs, group_name, key, keylen, buf);
    if (len)
        *len = l;
    return VIGIL_OK;
}

/* ---- load / save ------------------------------------------------------- */

static void free_replies(redisReply **r, int n)
{
    for (int i = 0; i < n; i++)
        if (r[i]) {
            freeReplyObject(r[i]);
            r[i] = NULL;
        }
}

static vigil_status do_load(vigil_store *st, const vigil_store_key *keys, int n,
                            void (*found)(void *ud, int i, const unsigned char *data, size_t len),
                            void *ud, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || n < 0 || (n > 0 && (!keys || !found)))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store load: bad arguments");
    if (n == 0)
        return VIGIL_OK;
    for (int i = 0; i < n; i++) {
        vigil_status s = check_key(rs, &keys[i], err);
        if (s != VIGIL_OK) {
            rs->stats.errors++;
            return s;
        }
    }
    if ((size_t)n > rs->replies_cap) {
        redisReply **nr = realloc(rs->replies, (size_t)n * sizeof *nr);
        if (!nr) {
            rs->stats.errors++;
            return vigil_error_set(err, VIGIL_ENOMEM, "Redis store load: out of memory for %d replies", n);
        }
        memset(nr + rs->replies_cap, 0, ((size_t)n - rs->replies_cap) * sizeof *nr);
        rs->replies = nr;
        rs->replies_cap = (size_t)n;
    }
    vigil_status s = ensure_conn(rs, err);
    if (s != VIGIL_OK) {
        rs->stats.errors++;
        return s;
    }
    for (int i = 0; i < n; i++) {
        const vigil_store_key *k = &keys[i];
        size_t kl = build_key(rs, k->group_name, k->key, k->keylen, rs->keybuf);
        const char *av[2] = { "GET", rs->keybuf };
        size_t al[2] = { 3, kl };
        if (redisAppendCommandArgv(rs->c, 2, av, al) != REDIS_OK) {
            rs->stats.errors++;
            return conn_failed(rs, "cannot queue GET", err);
        }
    }
    rs->stats.round_trips++;
    rs->stats.loads++;
    rs->stats.keys_loaded += (uint64_t)n;
    int got = 0;
    for (; got < n; got++) {
        void *r = NULL;
        if (redisGetReply(rs->c, &r) != REDIS_OK || !r) {
            free_replies(rs->replies, got);
            rs->stats.errors++;
            return conn_failed(rs, "load failed", err);
        }
        rs->replies[got] = r;
    }
    /* Check every reply before the first callback: on error, found() is
     * never called. The connection stays in sync (all replies were read). */
    s = VIGIL_OK;
    uint64_t nfound = 0;
    for (int i = 0; i < n && s == VIGIL_OK; i++) {
        redisReply *r = rs->replies[i];
        if (r->type == REDIS_REPLY_STRING)
            nfound++;
        else if (r->type == REDIS_REPLY_ERROR)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis GET of %s key '%.*s' failed: %.*s",
                                keys[i].group_name, (int)(keys[i].keylen > 64 ? 64 : keys[i].keylen),
                                keys[i].key ? keys[i].key : "", (int)r->len, r->str);
        else if (r->type != REDIS_REPLY_NIL)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis GET of %s key: unexpected reply type %d",
                                keys[i].group_name, r->type);
    }
    if (s == VIGIL_OK) {
        for (int i = 0; i < n; i++) {
            redisReply *r = rs->replies[i];
            if (r->type == REDIS_REPLY_STRING)
                found(ud, i, (const unsigned char *)r->str, r->len);
        }
        rs->stats.keys_found += nfound;
    } else {
        rs->stats.errors++;
    }
    free_replies(rs->replies, n);
    return s;
}

static vigil_status do_save(vigil_store *st, const vigil_store_record *recs, int n,
                            const vigil_redis_offset *offs, int noffs, const vigil_alert_record *alerts,
                            int nalerts, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || n < 0 || (n > 0 && !recs) || noffs < 0 || nalerts < 0 ||
        (noffs && !offs) || (nalerts && !alerts))
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store save: bad arguments");
    if (n + noffs + nalerts == 0)
        return VIGIL_OK;
    for (int i = 0; i < noffs; i++)
        if (!offs[i].group_name || strpbrk(offs[i].group_name, "{}") || strlen(offs[i].group_name) > 200 ||
            offs[i].partition < 0)
            return vigil_error_set(err, VIGIL_EINVAL, "Redis store save: bad offset %d", i);
    uint64_t nsets = 0, ndels = 0;
    for (int i = 0; i < n; i++) {
        vigil_status s = check_key(rs, &recs[i].k, err);
        if (s == VIGIL_OK && !recs[i].data && recs[i].len)
            s = vigil_error_set(err, VIGIL_EINVAL, "Redis store save: record %d has no data but length %zu",
                                i, recs[i].len);
        if (s == VIGIL_OK && recs[i].ttl_ms < 0)
            s = vigil_error_set(err, VIGIL_EINVAL, "Redis store save: record %d has a negative TTL", i);
        if (s != VIGIL_OK) {
            rs->stats.errors++;
            return s;
        }
        if (recs[i].data)
            nsets++;
        else
            ndels++;
    }
    vigil_status s = ensure_conn(rs, err);
    if (s != VIGIL_OK) {
        rs->stats.errors++;
        return s;
    }
    const char *multi = "MULTI", *exec = "EXEC";
    size_t ml = 5, el = 4;
    if (redisAppendCommandArgv(rs->c, 1, &multi, &ml) != REDIS_OK) {
        rs->stats.errors++;
        return conn_failed(rs, "cannot queue MULTI", err);
    }
    for (int i = 0; i < n; i++) {
        const vigil_store_record *rec = &recs[i];
        size_t kl = build_key(rs, rec->k.group_name, rec->k.key, rec->k.keylen, rs->keybuf);
        const char *av[5];
        size_t al[5];
        int ac = 0;
        char ttl[24];
        if (!rec->data) {
            av[ac] = "DEL"; al[ac++] = 3;
            av[ac] = rs->keybuf; al[ac++] = kl;
        } else {
            av[ac] = "SET"; al[ac++] = 3;
            av[ac] = rs->keybuf; al[ac++] = kl;
            av[ac] = rec->len ? (const char *)rec->data : ""; al[ac++] = rec->len;
            if (rec->ttl_ms > 0) {
                int tl = snprintf(ttl, sizeof ttl, "%lld", (long long)rec->ttl_ms);
                av[ac] = "PX"; al[ac++] = 2;
                av[ac] = ttl; al[ac++] = (size_t)tl;
            }
        }
        if (redisAppendCommandArgv(rs->c, ac, av, al) != REDIS_OK) {
            rs->stats.errors++;
            return conn_failed(rs, "cannot queue SET", err);
        }
    }
    for (int i = 0; i < noffs; i++) {
        char key[300], val[48];
        int kl = snprintf(key, sizeof key, "%s:{%s:p%d}:offset", rs->prefix, offs[i].group_name, offs[i].partition);
        int vl = snprintf(val, sizeof val, "%llu %lld", (unsigned long long)offs[i].seq, (long long)offs[i].wm);
        const char *av[3] = { "SET", key, val };
        size_t al[3] = { 3, (size_t)kl, (size_t)vl };
        if (redisAppendCommandArgv(rs->c, 3, av, al) != REDIS_OK) {
            rs->stats.errors++;
            return conn_failed(rs, "cannot queue an offset", err);
        }
    }
    if (nalerts) {
        char okey[300];
        int okl = snprintf(okey, sizeof okey, "%s:outbox", rs->prefix);
        for (int i = 0; i < nalerts; i++) {
            const vigil_alert_record *a = &alerts[i];
            const char *av[15] = { "XADD", okey, "*", "id", a->id, "rule", a->rule, "severity", a->severity,
                                   "key", a->key, "mode", a->mode == VIGIL_MODE_SHADOW ? "shadow" : "active", "json", a->json };
            size_t al[15] = { 4, (size_t)okl, 1, 2, strlen(a->id), 4, strlen(a->rule), 8, strlen(a->severity),
                              3, strlen(a->key), 4, 6, 4, a->len };
            if (redisAppendCommandArgv(rs->c, 15, av, al) != REDIS_OK) {
                rs->stats.errors++;
                return conn_failed(rs, "cannot queue XADD", err);
            }
        }
    }
    int ncmd = n + noffs + nalerts;
    if (redisAppendCommandArgv(rs->c, 1, &exec, &el) != REDIS_OK) {
        rs->stats.errors++;
        return conn_failed(rs, "cannot queue EXEC", err);
    }
    rs->stats.round_trips++;
    rs->stats.saves++;
    /* ncmd + 2 replies: +OK, ncmd × +QUEUED (or an error), then EXEC's.
     * Read them all, whatever they say, to keep the connection in sync. */
    s = VIGIL_OK;
    if (ncmd > n && vigil_fault_due("commit")) {
        /* fault injection (VIGIL_FAULT=commit:N, counted over server
         * commits): the whole transaction is on the wire, its reply unread */
        int done = 0;
        while (!done && redisBufferWrite(rs->c, &done) == REDIS_OK) {}
        vigil_fault_kill("commit");
    }
    for (int i = 0; i < ncmd + 2; i++) {
        void *vr = NULL;
        if (redisGetReply(rs->c, &vr) != REDIS_OK || !vr) {
            /* Unsent bytes left in the output buffer mean EXEC never reached
             * the server, which discards an unfinished MULTI on disconnect. */
            int unsent = rs->c->obuf && sdslen(rs->c->obuf) > 0;
            rs->stats.errors++;
            return conn_failed(rs, unsent ? "save failed before EXEC was sent (nothing written)"
                                          : "save failed after EXEC was sent (outcome unknown: retry)",
                               err);
        }
        redisReply *r = vr;
        if (s == VIGIL_OK) {
            if (r->type == REDIS_REPLY_ERROR)
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis save (%s): %.*s",
                                    i == 0 ? "MULTI" : i == ncmd + 1 ? "EXEC" : "queueing",
                                    (int)r->len, r->str);
            else if (i == 0 && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0))
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: unexpected reply to MULTI");
            else if (i > 0 && i <= ncmd && !(r->type == REDIS_REPLY_STATUS && strcmp(r->str, "QUEUED") == 0))
                s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: command %d not queued", i - 1);
            else if (i == ncmd + 1) {
                if (r->type == REDIS_REPLY_NIL)
                    s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: transaction aborted");
                else if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)ncmd)
                    s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: unexpected reply to EXEC");
                else
                    for (size_t j = 0; j < r->elements && s == VIGIL_OK; j++)
                        if (r->element[j]->type == REDIS_REPLY_ERROR)
                            s = vigil_error_set(err, VIGIL_ESTORE, "Redis save: record %zu: %.*s", j,
                                                (int)r->element[j]->len, r->element[j]->str);
            }
        }
        freeReplyObject(r);
    }
    if (s == VIGIL_OK) {
        rs->stats.keys_saved += nsets;
        rs->stats.keys_deleted += ndels;
    } else {
        rs->stats.errors++;
    }
    return s;
}

static vigil_status rs_load(vigil_store *st, const vigil_store_key *keys, int n,
                            void (*found)(void *ud, int i, const unsigned char *data, size_t len),
                            void *ud, vigil_error *err)
{
    pipe_guard g;
    pipe_block(&g);
    vigil_status s = do_load(st, keys, n, found, ud, err);
    pipe_unblock(&g);
    return s;
}

static vigil_status rs_save(vigil_store *st, const vigil_store_record *recs, int n, vigil_error *err)
{
    pipe_guard g;
    pipe_block(&g);
    vigil_status s = do_save(st, recs, n, NULL, 0, NULL, 0, err);
    pipe_unblock(&g);
    return s;
}

static void rs_destroy(vigil_store *st)
{
    redis_store *rs = (redis_store *)st;
    if (!rs)
        return;
    drop_conn(rs);
    free(rs->prefix);
    free(rs->replies);
    rs->magic = 0;
    free(rs);
}

/* ---- public ------------------------------------------------------------ */

vigil_status vigil_redis_store_create_opts(const char *url, const char *prefix,
                                           const vigil_redis_opts *opts, vigil_store **out,
                                           vigil_error *err)
{
    if (!out)
        return vigil_error_set(err, VIGIL_EINVAL, "vigil_redis_store_create: out is NULL");
    *out = NULL;
    if (!prefix)
        prefix = "vigil";
    if (strpbrk(prefix, "{}") || strlen(prefix) > 256)
        return vigil_error_set(err, VIGIL_EINVAL,
                               "Redis key prefix '%.64s' must have no '{' or '}' and at most 256 bytes",
                               prefix);
    redis_store *rs = calloc(1, sizeof *rs);
    if (!rs)
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis store: out of memory");
    vigil_status s = vigil_redis_url_parse(url, rs->host, sizeof rs->host, &rs->port, &rs->db,
                                           rs->user, sizeof rs->user, rs->password,
                                           sizeof rs->password, err);
    if (s != VIGIL_OK) {
        free(rs);
        return s;
    }
    rs->prefix = strdup(prefix);
    if (!rs->prefix) {
        free(rs);
        return vigil_error_set(err, VIGIL_ENOMEM, "Redis store: out of memory");
    }
    rs->prefixlen = strlen(prefix);
    rs->connect_ms = (opts && opts->connect_timeout_ms > 0) ? opts->connect_timeout_ms : DEFAULT_CONNECT_MS;
    rs->io_ms = (opts && opts->io_timeout_ms > 0) ? opts->io_timeout_ms : DEFAULT_IO_MS;
    rs->magic = STORE_MAGIC;
    rs->base.load = rs_load;
    rs->base.save = rs_save;
    rs->base.destroy = rs_destroy;
    pipe_guard g;
    pipe_block(&g);
    s = ensure_conn(rs, err);
    pipe_unblock(&g);
    if (s != VIGIL_OK) {
        rs_destroy(&rs->base);
        return s;
    }
    *out = &rs->base;
    return VIGIL_OK;
}

vigil_status vigil_redis_store_create(const char *url, const char *prefix, vigil_store **out,
                                      vigil_error *err)
{
    return vigil_redis_store_create_opts(url, prefix, NULL, out, err);
}

vigil_status vigil_redis_store_stats(const vigil_store *st, vigil_redis_stats *out)
{
    const redis_store *rs = (const redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || !out)
        return VIGIL_EINVAL;
    *out = rs->stats;
    return VIGIL_OK;
}

vigil_status vigil_redis_ping(const char *url, vigil_error *err)
{
    char host[256], user[128], password[256];
    int port, db;
    vigil_status s = vigil_redis_url_parse(url, host, sizeof host, &port, &db, user, sizeof user,
                                           password, sizeof password, err);
    if (s != VIGIL_OK)
        return s;
    redisContext *c = NULL;
    pipe_guard g;
    pipe_block(&g);
    s = open_conn(host, port, db, user, password, PING_TIMEOUT_MS, PING_TIMEOUT_MS, &c, err);
    if (s == VIGIL_OK) {
        const char *av[1] = { "PING" };
        size_t al[1] = { 4 };
        s = simple_cmd(c, 1, av, al, "PONG", "PING", host, port, err);
        redisFree(c);
    }
    pipe_unblock(&g);
    return s;
}

/* ---- the server's commit: state, offsets and alerts in one transaction ---- */

vigil_status vigil_redis_store_set_partitions(vigil_store *st, int partitions)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || partitions < 0 || partitions > 65536)
        return VIGIL_EINVAL;
    rs->partitions = partitions;
    return VIGIL_OK;
}

vigil_status vigil_redis_store_commit(vigil_store *st, const vigil_store_record *recs, int n,
                                      const vigil_redis_offset *offs, int noffs,
                                      const vigil_alert_record *alerts, int nalerts, vigil_error *err)
{
    pipe_guard g;
    pipe_block(&g);
    vigil_status s = do_save(st, recs, n, offs, noffs, alerts, nalerts, err);
    pipe_unblock(&g);
    return s;
}

static vigil_status do_offsets(redis_store *rs, const char *const *groups, int ngroups, int partitions,
                               uint64_t *seqs, int64_t *wms, vigil_error *err)
{
    vigil_status s = ensure_conn(rs, err);
    if (s != VIGIL_OK)
        return s;
    /* the partition count is fixed for a deployment: offsets and hash tags depend on it */
    char mkey[300], pv[16];
    int mkl = snprintf(mkey, sizeof mkey, "%s:partitions", rs->prefix);
    int pvl = snprintf(pv, sizeof pv, "%d", partitions);
    const char *sv[4] = { "SET", mkey, pv, "NX" };
    size_t sl[4] = { 3, (size_t)mkl, (size_t)pvl, 2 };
    const char *gv[2] = { "GET", mkey };
    size_t gl[2] = { 3, (size_t)mkl };
    if (redisAppendCommandArgv(rs->c, 4, sv, sl) != REDIS_OK || redisAppendCommandArgv(rs->c, 2, gv, gl) != REDIS_OK)
        return conn_failed(rs, "cannot queue the partition check", err);
    for (int gi = 0; gi < ngroups; gi++)
        for (int p = 0; p < partitions; p++) {
            char key[300];
            int kl = snprintf(key, sizeof key, "%s:{%s:p%d}:offset", rs->prefix, groups[gi], p);
            const char *av[2] = { "GET", key };
            size_t al[2] = { 3, (size_t)kl };
            if (redisAppendCommandArgv(rs->c, 2, av, al) != REDIS_OK)
                return conn_failed(rs, "cannot queue GET offset", err);
        }
    rs->stats.round_trips++;
    int total = 2 + ngroups * partitions;
    s = VIGIL_OK;
    for (int i = 0; i < total; i++) {
        void *vr = NULL;
        if (redisGetReply(rs->c, &vr) != REDIS_OK || !vr)
            return conn_failed(rs, "reading offsets failed", err);
        redisReply *r = vr;
        if (s == VIGIL_OK && r->type == REDIS_REPLY_ERROR)
            s = vigil_error_set(err, VIGIL_ESTORE, "Redis: reading offsets: %.*s", (int)r->len, r->str);
        else if (s == VIGIL_OK && i == 1 && r->type == REDIS_REPLY_STRING &&
                 ((size_t)pvl != r->len || memcmp(r->str, pv, r->len) != 0))
            s = vigil_error_set(err, VIGIL_EINVAL,
                                "Redis prefix '%s' holds state made with %.*s partitions, not %d: partitions "
                                "are fixed for a deployment (set partitions = %.*s, or use another prefix)",
                                rs->prefix, (int)r->len, r->str, partitions, (int)r->len, r->str);
        else if (s == VIGIL_OK && i >= 2) {
            unsigned long long q = 0;
            long long w = INT64_MIN;
            if (r->type == REDIS_REPLY_STRING) {
                char buf[64];
                size_t l = r->len < sizeof buf - 1 ? r->len : sizeof buf - 1;
                memcpy(buf, r->str, l);
                buf[l] = 0;
                if (sscanf(buf, "%llu %lld", &q, &w) != 2)
                    s = vigil_error_set(err, VIGIL_ESTORE, "Redis: offset record '%s' is not '<seq> <watermark>'", buf);
            }
            seqs[i - 2] = q;
            wms[i - 2] = w;
        }
        freeReplyObject(r);
    }
    return s;
}

vigil_status vigil_redis_store_load_offsets(vigil_store *st, const char *const *groups, int ngroups,
                                            int partitions, uint64_t *seqs, int64_t *wms, vigil_error *err)
{
    redis_store *rs = (redis_store *)st;
    if (!rs || rs->magic != STORE_MAGIC || ngroups < 0 || partitions < 1 || !seqs || !wms)
        return vigil_error_set(err, VIGIL_EINVAL, "Redis store: bad arguments to load_offsets");
    pipe_guard g;
    pipe_block(&g);
    vigil_status s = do_offsets(rs, groups, ngroups, partitions, seqs, wms, err);
    pipe_unblock(&g);
    return s;
}
