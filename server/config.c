/* config.c — reads the settings of `vigil serve` from the Lua config file and
 * the VIGIL_* environment variables into a vigil_server_config (DESIGN.md §5;
 * the shape is in config.h).
 *
 * It exists so that a deployment is one file plus a few variables, and so
 * that a mistake in either stops the server at once with a message that says
 * what to write, instead of starting with a half-read configuration. Every
 * scalar key is described once, in `settings[]`: its path in the file, its
 * variable, its kind (which parser, which message) and where it goes in the
 * config; the file walker, the environment and the flags all go through the
 * same parser, so a value means the same wherever it is written.
 *
 * Nothing is half applied: each call works on a copy of the config (a
 * "stage") and copies it back only when everything was read; strings it
 * allocated are handed back to the owner's mark on failure.
 *
 * The file runs in its own small Lua state, built by allow-list as in
 * lua/src/sandbox.c (the recipe of Redis's script_lua.c): no io, debug or
 * package; `os` with only getenv; text chunks only; a memory cap in the
 * allocator, an instruction budget and a wall-clock deadline in a count hook.
 * The file comes from the operator, not the network, so the limits are there
 * to turn a mistake (an endless loop) into an error, not to stop an attacker;
 * that is why there is no pcall to guard and no setmetatable (no finalizer
 * can run after the file). */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include "config.h"
#include "server/state/redis.h"

#define FILE_MAX ((size_t)1 << 20)          /* bytes of config source */
#define MEM_CAP ((size_t)16 << 20)          /* bytes the Lua state may hold */
#define INSTR_BUDGET 10000000ULL            /* VM instructions */
#define HOOK_EVERY 1000                     /* instructions between hook calls */
#define WALL_MS 2000
#define STR_MAX 4096                        /* bytes of one string value */
#define CHUNKNAME "=config"                 /* Lua prefixes errors with "config:LINE:" */
#define EXAMPLE_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

/* ---- the owner: every string put in a config ------------------------------------- */

struct vigil_config_owner {
    char **s;
    size_t n, cap;
};

vigil_config_owner *vigil_config_owner_create(void) { return calloc(1, sizeof(vigil_config_owner)); }

void vigil_config_owner_destroy(vigil_config_owner *o) {
    if (!o) return;
    for (size_t i = 0; i < o->n; i++) free(o->s[i]);
    free(o->s);
    free(o);
}

/* A NUL-terminated copy of s[0..len) held by o, or NULL when out of memory. */
static const char *own(vigil_config_owner *o, const char *s, size_t len) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 32;
        char **p = realloc(o->s, cap * sizeof *p);
        if (!p) return NULL;
        o->s = p;
        o->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return NULL;
    memcpy(c, s, len);
    c[len] = '\0';
    o->s[o->n++] = c;
    return c;
}

static void own_rollback(vigil_config_owner *o, size_t mark) {
    while (o->n > mark) free(o->s[--o->n]);
}

/* ---- defaults --------------------------------------------------------------------- */

void vigil_config_defaults(vigil_server_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->rules = "rules";
    cfg->listen = "127.0.0.1:8080";
    cfg->subject = "vigil.events.>";
    cfg->redis_prefix = "vigil";
    cfg->workers = 2;
    cfg->partitions = 16;
    cfg->queue_cap = 65536;
    cfg->max_body = (size_t)16 << 20;
    cfg->idle_timeout_ms = 30000;
    cfg->stream = "VIGIL_EVENTS";
    cfg->consumer = "vigil";
    cfg->fetch_batch = 1000;
    cfg->data_dir = "./vigil-data";
    cfg->snapshot_interval_ms = 10000;
    cfg->outbox_fsync = 1;
    vigil_event_opts_init(&cfg->ev);
}

/* ---- the stage: a copy changed in place, committed only when all went well -------- */

typedef struct stage {
    vigil_server_config cfg;      /* the copy being changed */
    vigil_config_owner *o;
    size_t mark;                  /* o->n at the start: rolled back on failure */
    char *time_store, *id_store;  /* new backing strings of the field lists (ours until commit) */
    vigil_error *err;
    vigil_status status;
} stage;

static void stage_begin(stage *st, const vigil_server_config *cfg, vigil_config_owner *o, const char *file,
                        vigil_error *err) {
    memset(st, 0, sizeof *st);
    st->cfg = *cfg;
    st->o = o;
    st->mark = o->n;
    st->err = err;
    vigil_error_clear(err);
    if (err && file) snprintf(err->file, sizeof err->file, "%s", file);
}

static void stage_commit(stage *st, vigil_server_config *cfg) {
    if (st->time_store) {
        free(cfg->ev.time_store);
        st->cfg.ev.time_store = st->time_store;
    }
    if (st->id_store) {
        free(cfg->ev.id_store);
        st->cfg.ev.id_store = st->id_store;
    }
    *cfg = st->cfg;
}

static vigil_status stage_abort(stage *st) {
    free(st->time_store);
    free(st->id_store);
    st->time_store = st->id_store = NULL;
    own_rollback(st->o, st->mark);
    return st->status != VIGIL_OK ? st->status : VIGIL_EPARSE;
}

static int fail(stage *st, vigil_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(stage *st, vigil_status s, const char *fmt, ...) {
    if (st->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->err->msg, sizeof st->err->msg, fmt, ap);
        va_end(ap);
    }
    st->status = s;
    return -1;
}

static int no_memory(stage *st) { return fail(st, VIGIL_ENOMEM, "out of memory while reading the configuration"); }

/* ---- where a value came from, and how to write one there ------------------------- */

typedef enum { SRC_FILE, SRC_ENV, SRC_FLAG } src_kind;

typedef struct origin {
    src_kind k;
    char name[128];   /* the key's path in the file ("webhooks[2].timeout"), the variable or the flag */
} origin;

/* v made safe to print: at most 60 bytes, control bytes as '?', and for a
 * Lua string literal '"' and '\' escaped. */
static void printable(char *out, size_t n, const char *v, int lua) {
    size_t o = 0;
    for (size_t i = 0; v[i] && o + 5 < n; i++) {
        if (i == 60) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)v[i];
        if (lua && (c == '"' || c == '\\')) out[o++] = '\\';
        out[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[o] = '\0';
}

/* How one writes the setting with value v in this source: `workers = 4`,
 * `rules = "rules"` (quoted: v is a Lua string), `VIGIL_WORKERS=4`,
 * `--workers 4`. */
static const char *form(char *buf, size_t n, const origin *s, const char *v, int quoted) {
    char p[256];
    printable(p, sizeof p, v, s->k == SRC_FILE && quoted);
    if (s->k == SRC_FILE)
        snprintf(buf, n, quoted ? "%s = \"%s\"" : "%s = %s", s->name, p);
    else if (s->k == SRC_ENV)
        snprintf(buf, n, "%s=%s", s->name, p);
    else
        snprintf(buf, n, "%s %s", s->name, p);
    return buf;
}

/* ---- the settings ------------------------------------------------------------------ */

typedef enum kind {
    K_PATH,          /* non-empty string */
    K_LISTEN,        /* HOST:PORT */
    K_INT,           /* int in [min, max] */
    K_COUNT,         /* size_t in [min, max] */
    K_BYTES,         /* size_t in [min, max], also "16MiB" */
    K_DURATION,      /* int64_t ms >= min */
    K_MS_LONG,       /* long ms >= min (endpoints) */
    K_BOOL,          /* int 0/1 */
    K_TIME_FIELDS,   /* cfg.ev time field list */
    K_ID_FIELDS,     /* cfg.ev id field list */
    K_TIME_FORMAT,   /* cfg.ev time format */
    K_NATS_URL,
    K_SUBJECT,
    K_NATS_NAME,     /* JetStream stream or consumer */
    K_REDIS_URL,
    K_PREFIX,
    K_DIR,           /* any string, "" allowed */
    K_SECRET,        /* whsec_… */
    K_WEBHOOK_URLS,  /* comma-separated URLs: replace the endpoints */
    K_HTTP_URL,
    K_EP_NAME,
    K_SEVERITY,
    K_TOKEN,
    K_ROLE
} kind;

typedef struct setting {
    const char *key;      /* path in the file */
    const char *env;      /* its variable, or NULL */
    kind k;
    size_t off;           /* where it goes: in vigil_server_config, or vigil_endpoint_config / vigil_token_config */
    long long min, max;
    int optional;         /* "" means none (NULL; data_dir keeps "") */
    const char *example;  /* a good value, unquoted */
} setting;

#define OFF(f) offsetof(vigil_server_config, f)
#define EOFF(f) offsetof(vigil_endpoint_config, f)
#define TOFF(f) offsetof(vigil_token_config, f)
#define DUR_MAX 9000000000000000LL

static const setting settings[] = {
    {"rules", "VIGIL_RULES", K_PATH, OFF(rules), 0, 0, 0, "rules"},
    {"listen", "VIGIL_LISTEN", K_LISTEN, OFF(listen), 0, 0, 0, "127.0.0.1:8080"},
    {"workers", "VIGIL_WORKERS", K_INT, OFF(workers), 1, 64, 0, "4"},
    {"partitions", "VIGIL_PARTITIONS", K_INT, OFF(partitions), 1, 4096, 0, "16"},
    {"queue_cap", "VIGIL_QUEUE_CAP", K_COUNT, OFF(queue_cap), 1, 1 << 24, 0, "65536"},
    {"max_body", "VIGIL_MAX_BODY", K_BYTES, OFF(max_body), 1024, 1 << 30, 0, "16MiB"},
    {"time_field", "VIGIL_TIME_FIELD", K_TIME_FIELDS, 0, 0, 0, 0, "ts"},
    {"id_field", "VIGIL_ID_FIELD", K_ID_FIELDS, 0, 0, 0, 0, "id"},
    {"time_format", "VIGIL_TIME_FORMAT", K_TIME_FORMAT, 0, 0, 0, 0, "auto"},
    {"allowed_lateness", "VIGIL_ALLOWED_LATENESS", K_DURATION, OFF(allowed_lateness_ms), 0, DUR_MAX, 0, "10s"},
    {"max_out_of_orderness", "VIGIL_MAX_OUT_OF_ORDERNESS", K_DURATION, OFF(max_out_of_orderness_ms), 0, DUR_MAX, 0,
     "10s"},
    {"idle_timeout", "VIGIL_IDLE_TIMEOUT", K_DURATION, OFF(idle_timeout_ms), 0, DUR_MAX, 0, "30s"},
    {"nats.url", "VIGIL_NATS", K_NATS_URL, OFF(nats_url), 0, 0, 1, "nats://127.0.0.1:4222"},
    {"nats.subject", "VIGIL_SUBJECT", K_SUBJECT, OFF(subject), 0, 0, 0, "vigil.events.>"},
    {"nats.jetstream", "VIGIL_JETSTREAM", K_BOOL, OFF(jetstream), 0, 0, 0, "true"},
    {"nats.jetstream.stream", "VIGIL_STREAM", K_NATS_NAME, OFF(stream), 0, 0, 0, "VIGIL_EVENTS"},
    {"nats.jetstream.consumer", "VIGIL_CONSUMER", K_NATS_NAME, OFF(consumer), 0, 0, 0, "vigil"},
    {"nats.jetstream.fetch_batch", "VIGIL_FETCH_BATCH", K_INT, OFF(fetch_batch), 1, 100000, 0, "1000"},
    {"redis.url", "VIGIL_REDIS", K_REDIS_URL, OFF(redis_url), 0, 0, 1, "redis://127.0.0.1:6379/0"},
    {"redis.prefix", "VIGIL_REDIS_PREFIX", K_PREFIX, OFF(redis_prefix), 0, 0, 0, "vigil"},
    {"store.data_dir", "VIGIL_DATA_DIR", K_DIR, OFF(data_dir), 0, 0, 1, "./vigil-data"},
    {"store.snapshot_interval", "VIGIL_SNAPSHOT_INTERVAL", K_DURATION, OFF(snapshot_interval_ms), 1, DUR_MAX, 0,
     "10s"},
    {"store.outbox_fsync", "VIGIL_OUTBOX_FSYNC", K_BOOL, OFF(outbox_fsync), 0, 0, 0, "true"},
    {"webhook_secret", "VIGIL_WEBHOOK_SECRET", K_SECRET, OFF(webhook_secret), 0, 0, 1, EXAMPLE_SECRET},
    {"webhooks", "VIGIL_WEBHOOKS", K_WEBHOOK_URLS, 0, 0, 0, 1, "https://hooks.example.com/vigil"},
    {NULL, NULL, K_PATH, 0, 0, 0, 0, NULL}};

static const setting endpoint_settings[] = {
    {"name", NULL, K_EP_NAME, EOFF(name), 0, 0, 0, "ops"},
    {"url", NULL, K_HTTP_URL, EOFF(url), 0, 0, 0, "https://hooks.example.com/vigil"},
    {"secret", NULL, K_SECRET, EOFF(secret), 0, 0, 1, EXAMPLE_SECRET},
    {"min_severity", NULL, K_SEVERITY, EOFF(min_severity), 0, 0, 0, "high"},
    {"concurrency", NULL, K_INT, EOFF(concurrency), 1, 1024, 0, "16"},
    {"timeout", NULL, K_MS_LONG, EOFF(timeout_ms), 1, DUR_MAX, 0, "5s"},
    {"backoff", NULL, K_MS_LONG, EOFF(backoff_ms), 1, DUR_MAX, 0, "1s"},
    {"max_backoff", NULL, K_MS_LONG, EOFF(max_backoff_ms), 1, DUR_MAX, 0, "1h"},
    {"horizon", NULL, K_MS_LONG, EOFF(horizon_ms), 1, DUR_MAX, 0, "24h"},
    {NULL, NULL, K_PATH, 0, 0, 0, 0, NULL}};

static const setting token_settings[] = {
    {"token", NULL, K_TOKEN, TOFF(token), 0, 0, 0, "<a long random string>"},
    {"role", NULL, K_ROLE, TOFF(role), 0, 0, 0, "viewer"},
    {NULL, NULL, K_PATH, 0, 0, 0, 0, NULL}};

static const setting *find_setting(const setting *tab, const char *key) {
    for (const setting *d = tab; d->key; d++)
        if (strcmp(d->key, key) == 0) return d;
    return NULL;
}

/* The example is a Lua string in the file unless the kind is a number or a boolean. */
static int example_quoted(const setting *d) { return !(d->k == K_INT || d->k == K_COUNT || d->k == K_BOOL); }

/* What a good value is, for messages. */
static const char *describe(const setting *d, const origin *s, char *buf, size_t n) {
    switch (d->k) {
    case K_PATH: return "a rules directory or file";
    case K_LISTEN: return "an address HOST:PORT (port 0 to 65535)";
    case K_INT:
    case K_COUNT: snprintf(buf, n, "a whole number from %lld to %lld", d->min, d->max); return buf;
    case K_BYTES:
        return "a size from 1KiB to 1GiB (a number of bytes, or a number with B, KiB, MiB or GiB)";
    case K_DURATION:
    case K_MS_LONG:
        return d->min > 0 ? "a duration above 0 (a number and a unit: ms, s, m, h or d)"
                          : "a duration (a number and a unit: ms, s, m, h or d; or 0)";
    case K_BOOL: return s->k == SRC_FILE ? "true or false" : "a boolean (1, 0, true, false, yes, no, on or off)";
    case K_TIME_FIELDS:
    case K_ID_FIELDS:
        snprintf(buf, n, s->k == SRC_FILE ? "a field name or a list of at most %d field names"
                                          : "a comma-separated list of at most %d field names",
                 VIGIL_MAX_NAME_FIELDS);
        return buf;
    case K_TIME_FORMAT: return "a time format: auto, s, ms or rfc3339";
    case K_NATS_URL: return "a NATS URL, nats://HOST:PORT or tls://HOST:PORT (several separated by commas)";
    case K_SUBJECT: return "a NATS subject (1 to 255 characters, no spaces)";
    case K_NATS_NAME:
        return "a JetStream name (1 to 255 characters; no spaces, '.', '*', '>', '/' or '\\')";
    case K_REDIS_URL: return "a Redis URL, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]";
    case K_PREFIX: return "a key prefix (1 to 64 characters; no spaces, '{' or '}')";
    case K_DIR: return "a directory (\"\" for none)";
    case K_SECRET: return "a webhook secret: \"whsec_\" followed by base64 (make one with `openssl rand -base64 32`)";
    case K_WEBHOOK_URLS:
        snprintf(buf, n, "a comma-separated list of at most %d http:// or https:// URLs", VIGIL_MAX_WEBHOOKS);
        return buf;
    case K_HTTP_URL: return "an http:// or https:// URL";
    case K_EP_NAME: return "an endpoint name (1 to 64 letters, digits, '-' and '_')";
    case K_SEVERITY: return "a severity: low, medium, high or critical";
    case K_TOKEN: return "an API token (1 to 256 visible characters, no spaces)";
    case K_ROLE: return "a role: ingest, viewer, analyst or admin";
    }
    return "?";
}

/* Secrets are never echoed. */
static int is_secret(const setting *d) { return d->k == K_SECRET || d->k == K_TOKEN; }

/* "<written> is not <what>; write <example>", or with `why` instead of "is not <what>". */
static int bad_value(stage *st, const setting *d, const origin *s, const char *shown, int quoted, const char *why) {
    char a[320], b[320], w[160];
    if (is_secret(d)) {
        shown = "...";
        quoted = 1;
    }
    form(a, sizeof a, s, shown, quoted);
    form(b, sizeof b, s, d->example, s->k == SRC_FILE && example_quoted(d));
    if (why) return fail(st, VIGIL_EPARSE, "%s %s; write %s", a, why, b);
    return fail(st, VIGIL_EPARSE, "%s is not %s; write %s", a, describe(d, s, w, sizeof w), b);
}

/* ---- value parsers ------------------------------------------------------------------ */

static int parse_ll(const char *v, long long *out) {
    if (!*v || isspace((unsigned char)*v)) return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*end || errno) return -1;
    *out = n;
    return 0;
}

/* "16MiB", "512KiB", "1GiB", "100B", "1048576" (units case-insensitive, an optional space before). */
static int parse_size(const char *v, long long *out) {
    if (!*v || isspace((unsigned char)*v) || *v == '-' || *v == '+') return -1;
    char *end;
    double x = strtod(v, &end);
    if (end == v || !(x >= 0) || x > 1e18) return -1;
    while (*end == ' ') end++;
    double mul;
    if (!*end || strcasecmp(end, "b") == 0) mul = 1;
    else if (strcasecmp(end, "kib") == 0) mul = 1024.0;
    else if (strcasecmp(end, "mib") == 0) mul = 1024.0 * 1024;
    else if (strcasecmp(end, "gib") == 0) mul = 1024.0 * 1024 * 1024;
    else return -1;
    double r = x * mul;
    if (r > 1e18 || r != (double)(long long)r) return -1;   /* whole bytes only */
    *out = (long long)r;
    return 0;
}

/* The rule language's durations ("500ms", "10s", "5m", "1h", "1d"), and 0. */
static int parse_duration(const char *v, int64_t *ms) {
    if (strcmp(v, "0") == 0) {
        *ms = 0;
        return 0;
    }
    return vigil_duration_parse(v, ms) == VIGIL_OK ? 0 : -1;
}

static int parse_bool(const char *v, int *b) {
    static const char *const yes[] = {"1", "true", "yes", "on", NULL}, *const no[] = {"0", "false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++)
        if (strcasecmp(v, yes[i]) == 0) return *b = 1, 0;
    for (int i = 0; no[i]; i++)
        if (strcasecmp(v, no[i]) == 0) return *b = 0, 0;
    return -1;
}

static int has_space_or_ctl(const char *v) {
    for (; *v; v++)
        if (isspace((unsigned char)*v) || (unsigned char)*v < 0x20 || *v == 0x7f) return 1;
    return 0;
}

static int check_listen(const char *v) {
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || has_space_or_ctl(v)) return -1;
    long long port;
    if (parse_ll(colon + 1, &port) || colon[1] == '-' || colon[1] == '+' || port < 0 || port > 65535) return -1;
    return 0;
}

/* scheme://HOST… with one of the given schemes (case-insensitive) and a host. */
static int check_url(const char *v, size_t len, const char *const *schemes) {
    for (size_t i = 0; i < len; i++)
        if (isspace((unsigned char)v[i]) || (unsigned char)v[i] < 0x20 || v[i] == 0x7f) return -1;
    for (int i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        if (len > n && strncasecmp(v, schemes[i], n) == 0) return (v[n] == '/' || v[n] == '?' || v[n] == '#') ? -1 : 0;
    }
    return -1;
}

static const char *const http_schemes[] = {"http://", "https://", NULL};
static const char *const nats_schemes[] = {"nats://", "tls://", NULL};

static int check_nats_url(const char *v) {
    for (const char *p = v;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (check_url(p, len, nats_schemes)) return -1;
        if (!c) return 0;
        p = c + 1;
    }
}

static int check_secret(const char *v) {
    if (strncmp(v, "whsec_", 6) != 0) return -1;
    const char *b = v + 6;
    size_t n = strlen(b);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    if (n == 0 || n > 256 || strspn(b, alphabet) != n || n % 4 == 1) return -1;
    return 0;
}

static int check_chars(const char *v, size_t maxlen, const char *forbidden) {
    size_t n = strlen(v);
    if (n == 0 || n > maxlen || has_space_or_ctl(v)) return -1;
    return strpbrk(v, forbidden) ? -1 : 0;
}

static int check_ep_name(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 64) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_') return -1;
    return 0;
}

static int in_list(const char *v, const char *const *list) {
    for (int i = 0; list[i]; i++)
        if (strcmp(v, list[i]) == 0) return 1;
    return 0;
}

static const char *const severities[] = {"low", "medium", "high", "critical", NULL};
static const char *const roles[] = {"ingest", "viewer", "analyst", "admin", NULL};

/* A comma-separated field list: 1..VIGIL_MAX_NAME_FIELDS non-empty names. */
static int check_fields(const char *v) {
    int n = 0;
    for (const char *p = v;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0 || len > 255) return -1;
        if (++n > VIGIL_MAX_NAME_FIELDS) return -1;
        if (!c) return 0;
        p = c + 1;
    }
}

/* ---- storing ------------------------------------------------------------------------ */

static int store_str(stage *st, void *base, const setting *d, const char *v) {
    const char *c = own(st->o, v, strlen(v));
    if (!c) return no_memory(st);
    *(const char **)((char *)base + d->off) = c;
    return 0;
}

static int store_int(stage *st, void *base, const setting *d, const origin *s, long long n, const char *shown, int quoted) {
    if (n < d->min || n > d->max) return bad_value(st, d, s, shown, quoted, NULL);
    if (d->k == K_INT)
        *(int *)((char *)base + d->off) = (int)n;
    else
        *(size_t *)((char *)base + d->off) = (size_t)n;
    return 0;
}

static int store_ms(stage *st, void *base, const setting *d, const origin *s, int64_t ms, const char *shown, int quoted) {
    if (ms < d->min) return bad_value(st, d, s, shown, quoted, "must be more than 0");
    if (d->k == K_MS_LONG)
        *(long *)((char *)base + d->off) = (long)ms;
    else
        *(int64_t *)((char *)base + d->off) = ms;
    return 0;
}

static int set_fields(stage *st, const setting *d, const char *v) {
    int time = d->k == K_TIME_FIELDS;
    char **store = time ? &st->time_store : &st->id_store;
    vigil_decode_opts *o = &st->cfg.ev.decode;
    free(*store);
    *store = NULL;
    vigil_status s = vigil_decode_opts_set_list(v, time ? o->time_fields : o->id_fields,
                                                time ? &o->ntime_fields : &o->nid_fields, store);
    if (s != VIGIL_OK) {
        free(*store);
        *store = NULL;
        return no_memory(st);   /* the list was checked before: only an allocation can fail */
    }
    return 0;
}

/* VIGIL_WEBHOOKS: the endpoints become these URLs with default options. */
static int set_webhook_urls(stage *st, const setting *d, const origin *s, const char *v) {
    vigil_endpoint_config eps[VIGIL_MAX_WEBHOOKS];
    memset(eps, 0, sizeof eps);
    int n = 0;
    for (const char *p = v; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        if (len) {
            if (n == VIGIL_MAX_WEBHOOKS) {
                char w[160];
                snprintf(w, sizeof w, "has more than %d URLs (VIGIL_MAX_WEBHOOKS)", VIGIL_MAX_WEBHOOKS);
                return bad_value(st, d, s, v, 1, w);
            }
            if (check_url(p, len, http_schemes)) {
                char u[300], w[400];
                snprintf(u, sizeof u, "%.*s", (int)(len > 200 ? 200 : len), p);
                char pu[256];
                printable(pu, sizeof pu, u, 0);
                snprintf(w, sizeof w, "has '%s', which is not an http:// or https:// URL", pu);
                return bad_value(st, d, s, v, 1, w);
            }
            if (!(eps[n++].url = own(st->o, p, len))) return no_memory(st);
        }
        if (!c) break;
        p = c + 1;
    }
    memcpy(st->cfg.endpoints, eps, sizeof eps);
    st->cfg.nendpoints = n;
    return 0;
}

/* Parse text v for setting d into base (the staged config, or an endpoint or
 * token being built) and report errors as coming from s. */
static int parse_value(stage *st, const setting *d, void *base, const char *v, const origin *s) {
    char w[200];
    if (d->optional && !*v && d->k != K_DIR && d->k != K_WEBHOOK_URLS) {
        *(const char **)((char *)base + d->off) = NULL;
        return 0;
    }
    switch (d->k) {
    case K_PATH:
        if (!*v) return bad_value(st, d, s, v, 1, "is empty: a rules directory or file is required");
        return store_str(st, base, d, v);
    case K_LISTEN:
        if (check_listen(v)) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_INT:
    case K_COUNT: {
        long long n;
        if (parse_ll(v, &n)) return bad_value(st, d, s, v, 1, NULL);
        return store_int(st, base, d, s, n, v, 1);
    }
    case K_BYTES: {
        long long n;
        if (parse_size(v, &n)) return bad_value(st, d, s, v, 1, NULL);
        return store_int(st, base, d, s, n, v, 1);
    }
    case K_DURATION:
    case K_MS_LONG: {
        int64_t ms;
        if (parse_duration(v, &ms)) return bad_value(st, d, s, v, 1, NULL);
        return store_ms(st, base, d, s, ms, v, 1);
    }
    case K_BOOL: {
        int b;
        if (parse_bool(v, &b)) return bad_value(st, d, s, v, 1, NULL);
        *(int *)((char *)base + d->off) = b;
        return 0;
    }
    case K_TIME_FIELDS:
    case K_ID_FIELDS:
        if (check_fields(v)) return bad_value(st, d, s, v, 1, NULL);
        return set_fields(st, d, v);
    case K_TIME_FORMAT:
        if (vigil_time_format_parse(v, &st->cfg.ev.decode.time_format) != VIGIL_OK)
            return bad_value(st, d, s, v, 1, NULL);
        return 0;
    case K_NATS_URL:
        if (check_nats_url(v))
            return bad_value(st, d, s, v, 1,
                             "is not a NATS URL: it must start with nats:// or tls:// and name a host "
                             "(several URLs are separated by commas)");
        return store_str(st, base, d, v);
    case K_SUBJECT:
        if (check_chars(v, 255, "")) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_NATS_NAME:
        if (check_chars(v, 255, ".*>/\\")) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_REDIS_URL: {
        char host[256], user[128], pass[256];
        int port, db;
        vigil_error e;
        vigil_error_clear(&e);
        if (vigil_redis_url_parse(v, host, sizeof host, &port, &db, user, sizeof user, pass, sizeof pass, &e) !=
                VIGIL_OK) {
            snprintf(w, sizeof w, "is not a Redis URL (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
            return bad_value(st, d, s, v, 1, w);
        }
        return store_str(st, base, d, v);
    }
    case K_PREFIX:
        if (check_chars(v, 64, "{}")) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_DIR:
        return store_str(st, base, d, v);
    case K_SECRET:
        if (check_secret(v)) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_WEBHOOK_URLS:
        return set_webhook_urls(st, d, s, v);
    case K_HTTP_URL:
        if (check_url(v, strlen(v), http_schemes))
            return bad_value(st, d, s, v, 1, "is not a webhook URL: it must start with http:// or https:// and name a host");
        return store_str(st, base, d, v);
    case K_EP_NAME:
        if (check_ep_name(v)) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_SEVERITY:
        if (!in_list(v, severities)) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_TOKEN:
        if (check_chars(v, 256, "")) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_ROLE:
        if (!in_list(v, roles)) return bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    }
    return fail(st, VIGIL_EINVAL, "internal error: setting '%s' has no parser", d->key);
}

/* ---- environment and flags ------------------------------------------------------------ */

vigil_status vigil_config_apply_env(vigil_server_config *cfg, vigil_config_owner *owner, vigil_error *err) {
    stage st;
    stage_begin(&st, cfg, owner, NULL, err);
    for (const setting *d = settings; d->key; d++) {
        const char *v = getenv(d->env);
        if (!v || (!*v && !d->optional)) continue;
        origin s = {.k = SRC_ENV};
        snprintf(s.name, sizeof s.name, "%s", d->env);
        if (parse_value(&st, d, &st.cfg, v, &s)) return stage_abort(&st);
    }
    stage_commit(&st, cfg);
    return VIGIL_OK;
}

vigil_status vigil_config_set(vigil_server_config *cfg, vigil_config_owner *owner, const char *key,
                              const char *value, const char *source, vigil_error *err) {
    stage st;
    stage_begin(&st, cfg, owner, NULL, err);
    const setting *d = find_setting(settings, key);
    if (!d) {
        fail(&st, VIGIL_ENOTFOUND, "no setting named '%s'", key);
        return stage_abort(&st);
    }
    origin s = {.k = source && source[0] == '-' ? SRC_FLAG : SRC_ENV};
    snprintf(s.name, sizeof s.name, "%s", source ? source : d->env);
    if (parse_value(&st, d, &st.cfg, value, &s)) return stage_abort(&st);
    stage_commit(&st, cfg);
    return VIGIL_OK;
}

/* ---- the file: walking the returned table ------------------------------------------- */

typedef struct walker {
    stage *st;
    lua_State *L;
} walker;

static const char *lua_kind(lua_State *L, int i) {
    switch (lua_type(L, i)) {
    case LUA_TNIL: return "nil";
    case LUA_TBOOLEAN: return "a boolean";
    case LUA_TNUMBER: return lua_isinteger(L, i) ? "a whole number" : "a number";
    case LUA_TSTRING: return "a string";
    case LUA_TTABLE: return "a table";
    case LUA_TFUNCTION: return "a function";
    default: return luaL_typename(L, i);
    }
}

/* "<path> must be <what>, not <kind>; write <example>". */
static int bad_type(walker *w, const setting *d, const origin *s, int i) {
    char b[320], x[200];
    form(b, sizeof b, s, d->example, example_quoted(d));
    return fail(w->st, VIGIL_EPARSE, "%s must be %s, not %s; write %s", s->name, describe(d, s, x, sizeof x),
                lua_kind(w->L, i), b);
}

/* The string at i, checked for size and NUL bytes, or NULL after an error. */
static const char *lua_str(walker *w, const origin *s, int i) {
    size_t len;
    const char *v = lua_tolstring(w->L, i, &len);
    if (len > STR_MAX) {
        fail(w->st, VIGIL_EPARSE, "%s is %zu bytes long; at most %d are allowed", s->name, len, STR_MAX);
        return NULL;
    }
    if (strlen(v) != len) {
        fail(w->st, VIGIL_EPARSE, "%s contains a NUL byte (\\0); remove it", s->name);
        return NULL;
    }
    return v;
}

static void num_text(lua_State *L, int i, char *buf, size_t n) {
    if (lua_isinteger(L, i))
        snprintf(buf, n, "%lld", (long long)lua_tointeger(L, i));
    else
        snprintf(buf, n, "%.14g", (double)lua_tonumber(L, i));
}

/* A list of strings at i (one string also counts as a list of one) joined
 * with commas into buf, for the field lists; each element non-empty, without
 * commas, at most max of them. */
static int lua_name_list(walker *w, const setting *d, const origin *s, int i, int max, char *buf, size_t n) {
    lua_State *L = w->L;
    int t = lua_type(L, i);
    if (t == LUA_TSTRING) {
        const char *v = lua_str(w, s, i);
        if (!v) return -1;
        snprintf(buf, n, "%s", v);
        return 0;
    }
    if (t != LUA_TTABLE) return bad_type(w, d, s, i);
    lua_Integer len = (lua_Integer)lua_rawlen(L, i);
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, i)) {
        count++;
        lua_pop(L, 1);
    }
    if (count != len || len == 0) return bad_type(w, d, s, i);
    if (len > max) {
        char b[320];
        form(b, sizeof b, s, d->example, 1);
        return fail(w->st, VIGIL_EPARSE, "%s has %lld names; at most %d are allowed; write %s", s->name,
                    (long long)len, max, b);
    }
    size_t off = 0;
    buf[0] = '\0';
    for (lua_Integer k = 1; k <= len; k++) {
        origin e = *s;
        snprintf(e.name, sizeof e.name, "%.100s[%lld]", s->name, (long long)k);
        lua_rawgeti(L, i, k);
        if (lua_type(L, -1) != LUA_TSTRING) {
            int r = bad_type(w, d, &e, -1);
            lua_pop(L, 1);
            return r;
        }
        const char *v = lua_str(w, &e, -1);
        if (!v) {
            lua_pop(L, 1);
            return -1;
        }
        size_t vl = strlen(v);
        if (vl == 0 || vl > 255 || strchr(v, ',')) {
            int r = bad_value(w->st, d, &e, v, 1, "is not a name (1 to 255 characters, no commas)");
            lua_pop(L, 1);
            return r;
        }
        if (off + vl + 2 > n) {
            lua_pop(L, 1);
            return fail(w->st, VIGIL_EPARSE, "%s is too long", s->name);
        }
        if (off) buf[off++] = ',';
        memcpy(buf + off, v, vl + 1);
        off += vl;
        lua_pop(L, 1);
    }
    return 0;
}

/* The Lua value at i for setting d, into base. */
static int set_lua(walker *w, const setting *d, void *base, int i, const char *path) {
    lua_State *L = w->L;
    origin s = {.k = SRC_FILE};
    snprintf(s.name, sizeof s.name, "%s", path);
    int t = lua_type(L, i);
    char num[64];
    switch (d->k) {
    case K_INT:
    case K_COUNT:
    case K_BYTES:
        if (t == LUA_TNUMBER) {
            int ok;
            lua_Integer n = lua_tointegerx(L, i, &ok);
            num_text(L, i, num, sizeof num);
            if (!ok) return bad_value(w->st, d, &s, num, 0, NULL);
            return store_int(w->st, base, d, &s, (long long)n, num, 0);
        }
        if (t == LUA_TSTRING && d->k == K_BYTES) break;
        return bad_type(w, d, &s, i);
    case K_DURATION:
    case K_MS_LONG:
        if (t == LUA_TNUMBER) {
            num_text(L, i, num, sizeof num);
            if (lua_tonumber(L, i) != 0)
                return bad_value(w->st, d, &s, num, 0, "is a bare number: a duration needs a unit (ms, s, m, h or d)");
            return store_ms(w->st, base, d, &s, 0, num, 0);
        }
        if (t == LUA_TSTRING) break;
        return bad_type(w, d, &s, i);
    case K_BOOL:
        if (t != LUA_TBOOLEAN) return bad_type(w, d, &s, i);
        *(int *)((char *)base + d->off) = lua_toboolean(L, i);
        return 0;
    case K_TIME_FIELDS:
    case K_ID_FIELDS: {
        char list[VIGIL_MAX_NAME_FIELDS * 257];
        if (lua_name_list(w, d, &s, i, VIGIL_MAX_NAME_FIELDS, list, sizeof list)) return -1;
        return parse_value(w->st, d, base, list, &s);
    }
    default:
        if (t != LUA_TSTRING) return bad_type(w, d, &s, i);
        break;
    }
    const char *v = lua_str(w, &s, i);
    if (!v) return -1;
    return parse_value(w->st, d, base, v, &s);
}

/* Levenshtein distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *closest(const char *k, const char *const *known) {
    const char *best = NULL;
    size_t bd = 99, len = strlen(k);
    for (int i = 0; known[i]; i++) {
        size_t d = edit_distance(k, known[i]);
        if (d < bd) {
            bd = d;
            best = known[i];
        }
    }
    size_t limit = len / 3 > 2 ? len / 3 : 2;
    if (bd <= limit) return best;
    /* a part of a known key ("fsync" for "outbox_fsync") */
    for (int i = 0; known[i] && len >= 3; i++)
        if (strstr(known[i], k)) return known[i];
    return NULL;
}

static void join(char *buf, size_t n, const char *const *list) {
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; list[i] && off < n; i++) off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", list[i]);
}

/* Every key of table t must be one of known: name = value pairs only. */
static int check_keys(walker *w, int t, const char *where, const char *const *known) {
    lua_State *L = w->L;
    char list[600], key[80];
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            printable(key, sizeof key, lua_tostring(L, -1), 0);
            if (in_list(lua_tostring(L, -1), known)) continue;
            lua_pop(L, 1);
            join(list, sizeof list, known);
            const char *near = closest(key, known);
            if (near)
                return fail(w->st, VIGIL_EPARSE, "unknown key '%s' in %s; did you mean '%s'? The known keys are: %s", key,
                            where, near, list);
            return fail(w->st, VIGIL_EPARSE, "unknown key '%s' in %s; the known keys are: %s", key, where, list);
        }
        if (lua_type(L, -1) == LUA_TNUMBER)
            num_text(L, -1, key, sizeof key);
        else
            snprintf(key, sizeof key, "of type %s", luaL_typename(L, -1));
        lua_pop(L, 1);
        join(list, sizeof list, known);
        return fail(w->st, VIGIL_EPARSE,
                    "%s has an entry with key %s; write name = value pairs, with the names: %s", where, key, list);
    }
    return 0;
}

/* Push t[k] (raw) and return its type. */
static int field(lua_State *L, int t, const char *k) {
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

/* For a table whose every key is a setting "<prefix>.<key>" of tab (or just
 * "<key>" when prefix is ""). */
static int walk_settings(walker *w, int t, const char *prefix, const setting *tab, void *base,
                         const char *const *keys, const char *where) {
    lua_State *L = w->L;
    if (check_keys(w, t, where, keys)) return -1;
    for (int i = 0; keys[i]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", keys[i]);
        if (field(L, t, keys[i]) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        const setting *d = find_setting(tab, tab == settings ? path : keys[i]);
        int r = d ? set_lua(w, d, base, lua_gettop(L), path) : 0;
        lua_pop(L, 1);
        if (r) return -1;
    }
    return 0;
}

/* The length of the list at t, or -1 when t is not a list (keys 1..n only). */
static lua_Integer list_len(lua_State *L, int t) {
    lua_Integer len = (lua_Integer)lua_rawlen(L, t), count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
            lua_pop(L, 1);
            return -1;
        }
        count++;
    }
    return count == len ? len : -1;
}

static const char *const top_keys[] = {"rules", "listen", "workers", "partitions", "queue_cap", "max_body",
                                       "time_field", "id_field", "time_format", "allowed_lateness",
                                       "max_out_of_orderness", "idle_timeout", "nats", "redis", "store",
                                       "webhook_secret", "webhooks", "tokens", NULL};
static const char *const nats_keys[] = {"url", "subject", "jetstream", NULL};
static const char *const jetstream_keys[] = {"stream", "consumer", "fetch_batch", NULL};
static const char *const redis_keys[] = {"url", "prefix", NULL};
static const char *const store_keys[] = {"data_dir", "snapshot_interval", "outbox_fsync", NULL};
static const char *const endpoint_keys[] = {"name", "url", "secret", "rules", "min_severity", "concurrency",
                                            "timeout", "backoff", "max_backoff", "horizon", NULL};
static const char *const token_keys[] = {"token", "role", NULL};

/* nats = "nats://…" | { url, subject, jetstream = true | false | { stream, consumer, fetch_batch } } */
static int walk_nats(walker *w, int t) {
    lua_State *L = w->L;
    if (lua_type(L, t) == LUA_TSTRING) return set_lua(w, find_setting(settings, "nats.url"), &w->st->cfg, t, "nats");
    if (lua_type(L, t) != LUA_TTABLE)
        return fail(w->st, VIGIL_EPARSE,
                    "nats must be a table or a URL string, not %s; write nats = { url = \"nats://127.0.0.1:4222\" }",
                    lua_kind(L, t));
    if (check_keys(w, t, "the nats table", nats_keys)) return -1;
    static const char *const plain[] = {"url", "subject", NULL};
    for (int i = 0; plain[i]; i++) {
        char path[64];
        snprintf(path, sizeof path, "nats.%s", plain[i]);
        int r = 0;
        if (field(L, t, plain[i]) != LUA_TNIL) r = set_lua(w, find_setting(settings, path), &w->st->cfg, lua_gettop(L), path);
        lua_pop(L, 1);
        if (r) return -1;
    }
    int ty = field(L, t, "jetstream"), r = 0, js = lua_gettop(L);
    if (ty == LUA_TTABLE) {
        w->st->cfg.jetstream = 1;
        r = walk_settings(w, js, "nats.jetstream", settings, &w->st->cfg, jetstream_keys, "the nats.jetstream table");
    } else if (ty == LUA_TBOOLEAN) {
        w->st->cfg.jetstream = lua_toboolean(L, js);
    } else if (ty != LUA_TNIL) {
        r = fail(w->st, VIGIL_EPARSE,
                 "nats.jetstream must be true, false or a table, not %s; write nats.jetstream = true or "
                 "nats.jetstream = { stream = \"VIGIL_EVENTS\", consumer = \"vigil\", fetch_batch = 1000 }",
                 lua_kind(L, js));
    }
    lua_pop(L, 1);
    return r;
}

/* redis = "redis://…" | { url, prefix } */
static int walk_redis(walker *w, int t) {
    lua_State *L = w->L;
    if (lua_type(L, t) == LUA_TSTRING) return set_lua(w, find_setting(settings, "redis.url"), &w->st->cfg, t, "redis");
    if (lua_type(L, t) != LUA_TTABLE)
        return fail(w->st, VIGIL_EPARSE,
                    "redis must be a table or a URL string, not %s; write redis = { url = \"redis://127.0.0.1:6379/0\" }",
                    lua_kind(L, t));
    return walk_settings(w, t, "redis", settings, &w->st->cfg, redis_keys, "the redis table");
}

static int walk_store(walker *w, int t) {
    if (lua_type(w->L, t) != LUA_TTABLE)
        return fail(w->st, VIGIL_EPARSE,
                    "store must be a table, not %s; write store = { data_dir = \"./vigil-data\", "
                    "snapshot_interval = \"10s\", outbox_fsync = true }",
                    lua_kind(w->L, t));
    return walk_settings(w, t, "store", settings, &w->st->cfg, store_keys, "the store table");
}

/* An endpoint's rules: one name or a list of at most 32. */
static int walk_endpoint_rules(walker *w, int t, vigil_endpoint_config *ep, const char *path) {
    lua_State *L = w->L;
    const int max = (int)(sizeof ep->rules / sizeof ep->rules[0]);
    origin s = {.k = SRC_FILE};
    snprintf(s.name, sizeof s.name, "%s", path);
    static const setting d = {"rules", NULL, K_PATH, 0, 0, 0, 0, "card_testing"};
    int ty = lua_type(L, t);
    lua_Integer n = ty == LUA_TTABLE ? list_len(L, t) : (ty == LUA_TSTRING ? 1 : -1);
    if (n < 0)
        return fail(w->st, VIGIL_EPARSE,
                    "%s must be a rule name or a list of rule names, not %s; write rules = {\"card_testing\", "
                    "\"velocity\"}",
                    path, ty == LUA_TTABLE ? "a table with other keys" : lua_kind(L, t));
    if (n > max)
        return fail(w->st, VIGIL_EPARSE, "%s has %lld rules; at most %d are allowed (leave rules out for every rule)",
                    path, (long long)n, max);
    ep->nrules = 0;
    for (lua_Integer k = 1; k <= n; k++) {
        origin e = s;
        if (ty == LUA_TTABLE) {
            snprintf(e.name, sizeof e.name, "%s[%lld]", path, (long long)k);
            lua_rawgeti(L, t, k);
        } else {
            lua_pushvalue(L, t);
        }
        int r = 0;
        const char *v = NULL;
        if (lua_type(L, -1) != LUA_TSTRING)
            r = fail(w->st, VIGIL_EPARSE, "%s must be a rule name (a string), not %s; write rules = {\"card_testing\"}",
                     e.name, lua_kind(L, -1));
        else if (!(v = lua_str(w, &e, -1)))
            r = -1;
        else if (!*v || strlen(v) > 63 || has_space_or_ctl(v))
            r = bad_value(w->st, &d, &e, v, 1, "is not a rule name (1 to 63 characters, no spaces)");
        else if (!(ep->rules[ep->nrules++] = own(w->st->o, v, strlen(v))))
            r = no_memory(w->st);
        lua_pop(L, 1);
        if (r) return -1;
    }
    return 0;
}

static int walk_endpoint(walker *w, int t, int idx, vigil_endpoint_config *ep) {
    lua_State *L = w->L;
    char path[64], where[64];
    snprintf(path, sizeof path, "webhooks[%d]", idx);
    snprintf(where, sizeof where, "the endpoint webhooks[%d]", idx);
    if (lua_type(L, t) == LUA_TSTRING)   /* a bare URL */
        return set_lua(w, find_setting(endpoint_settings, "url"), ep, t, path);
    if (lua_type(L, t) != LUA_TTABLE)
        return fail(w->st, VIGIL_EPARSE,
                    "%s must be a table or a URL string, not %s; write { url = \"https://hooks.example.com/vigil\" }",
                    path, lua_kind(L, t));
    if (check_keys(w, t, where, endpoint_keys)) return -1;
    for (int i = 0; endpoint_keys[i]; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s.%s", path, endpoint_keys[i]);
        if (field(L, t, endpoint_keys[i]) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        int r = strcmp(endpoint_keys[i], "rules") == 0
                    ? walk_endpoint_rules(w, lua_gettop(L), ep, p)
                    : set_lua(w, find_setting(endpoint_settings, endpoint_keys[i]), ep, lua_gettop(L), p);
        lua_pop(L, 1);
        if (r) return -1;
    }
    if (!ep->url)
        return fail(w->st, VIGIL_EPARSE, "%s has no url; write url = \"https://hooks.example.com/vigil\" in it", path);
    if (ep->backoff_ms && ep->max_backoff_ms && ep->backoff_ms > ep->max_backoff_ms)
        return fail(w->st, VIGIL_EPARSE,
                    "%s: backoff (%ld ms) is longer than max_backoff (%ld ms); make max_backoff at least backoff", path,
                    ep->backoff_ms, ep->max_backoff_ms);
    return 0;
}

static int walk_webhooks(walker *w, int t) {
    lua_State *L = w->L;
    lua_Integer n = lua_type(L, t) == LUA_TTABLE ? list_len(L, t) : -1;
    if (n < 0)
        return fail(w->st, VIGIL_EPARSE,
                    "webhooks must be a list of endpoints, not %s; write webhooks = { { name = \"ops\", url = "
                    "\"https://hooks.example.com/vigil\" } }",
                    lua_type(L, t) == LUA_TTABLE ? "a table with other keys" : lua_kind(L, t));
    if (n > VIGIL_MAX_WEBHOOKS)
        return fail(w->st, VIGIL_EPARSE,
                    "webhooks has %lld endpoints; at most %d are allowed (VIGIL_MAX_WEBHOOKS): remove %lld, or fan "
                    "alerts out from one receiver or from NATS (vigil.alerts.<rule>)",
                    (long long)n, VIGIL_MAX_WEBHOOKS, (long long)n - VIGIL_MAX_WEBHOOKS);
    vigil_endpoint_config eps[VIGIL_MAX_WEBHOOKS];
    memset(eps, 0, sizeof eps);
    for (lua_Integer k = 1; k <= n; k++) {
        lua_rawgeti(L, t, k);
        int r = walk_endpoint(w, lua_gettop(L), (int)k, &eps[k - 1]);
        lua_pop(L, 1);
        if (r) return -1;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (eps[i].name && eps[j].name && strcmp(eps[i].name, eps[j].name) == 0)
                return fail(w->st, VIGIL_EPARSE,
                            "webhooks[%d].name = \"%s\" is already the name of webhooks[%d]; endpoint names must be "
                            "unique: rename one, e.g. name = \"%s-2\"",
                            i + 1, eps[i].name, j + 1, eps[i].name);
    memcpy(w->st->cfg.endpoints, eps, sizeof eps);
    w->st->cfg.nendpoints = (int)n;
    return 0;
}

static int walk_tokens(walker *w, int t) {
    lua_State *L = w->L;
    lua_Integer n = lua_type(L, t) == LUA_TTABLE ? list_len(L, t) : -1;
    if (n < 0)
        return fail(w->st, VIGIL_EPARSE,
                    "tokens must be a list, not %s; write tokens = { { token = \"<a long random string>\", role = "
                    "\"viewer\" } }",
                    lua_type(L, t) == LUA_TTABLE ? "a table with other keys" : lua_kind(L, t));
    if (n > VIGIL_MAX_TOKENS)
        return fail(w->st, VIGIL_EPARSE, "tokens has %lld entries; at most %d are allowed (VIGIL_MAX_TOKENS): remove %lld",
                    (long long)n, VIGIL_MAX_TOKENS, (long long)n - VIGIL_MAX_TOKENS);
    vigil_token_config tok[VIGIL_MAX_TOKENS];
    memset(tok, 0, sizeof tok);
    for (lua_Integer k = 1; k <= n; k++) {
        char path[64], where[64];
        snprintf(path, sizeof path, "tokens[%lld]", (long long)k);
        snprintf(where, sizeof where, "the entry tokens[%lld]", (long long)k);
        lua_rawgeti(L, t, k);
        int e = lua_gettop(L), r;
        if (lua_type(L, e) != LUA_TTABLE)
            r = fail(w->st, VIGIL_EPARSE,
                     "%s must be a table, not %s; write { token = \"<a long random string>\", role = \"viewer\" }",
                     path, lua_kind(L, e));
        else
            r = walk_settings(w, e, path, token_settings, &tok[k - 1], token_keys, where);
        lua_pop(L, 1);
        if (r) return -1;
        if (!tok[k - 1].token)
            return fail(w->st, VIGIL_EPARSE, "%s has no token; write token = \"<a long random string>\" in it "
                        "(e.g. from `openssl rand -hex 24`)", path);
        if (!tok[k - 1].role)
            return fail(w->st, VIGIL_EPARSE, "%s has no role; write role = \"viewer\" in it (one of ingest, viewer, "
                        "analyst, admin)", path);
        for (lua_Integer j = 1; j < k; j++)
            if (strcmp(tok[j - 1].token, tok[k - 1].token) == 0)
                return fail(w->st, VIGIL_EPARSE,
                            "%s has the same token as tokens[%lld]; every token must be different (one per client)",
                            path, (long long)j);
    }
    memcpy(w->st->cfg.tokens, tok, sizeof tok);
    w->st->cfg.ntokens = (int)n;
    return 0;
}

static int walk_top(walker *w, int t) {
    lua_State *L = w->L;
    if (check_keys(w, t, "the top-level table", top_keys)) return -1;
    for (int i = 0; top_keys[i]; i++) {
        const char *k = top_keys[i];
        if (field(L, t, k) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        int v = lua_gettop(L), r;
        const setting *d = find_setting(settings, k);
        if (strcmp(k, "nats") == 0) r = walk_nats(w, v);
        else if (strcmp(k, "redis") == 0) r = walk_redis(w, v);
        else if (strcmp(k, "store") == 0) r = walk_store(w, v);
        else if (strcmp(k, "webhooks") == 0) r = walk_webhooks(w, v);
        else if (strcmp(k, "tokens") == 0) r = walk_tokens(w, v);
        else r = set_lua(w, d, &w->st->cfg, v, k);
        lua_pop(L, 1);
        if (r) return -1;
    }
    return 0;
}

/* Runs protected (a Lua allocation may fail): 1 = the walker, 2 = the table. */
static int walk_main(lua_State *L) {
    walker *w = lua_touserdata(L, 1);
    w->L = L;
    walk_top(w, 2);
    return 0;
}

/* ---- the file: the sandbox ------------------------------------------------------------ */

typedef struct box {
    size_t used, cap;
    unsigned long long instr;
    int64_t deadline_ns;
    int killed, kill_line;
    char kill_msg[160];
} box;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The allocator: realloc/free with a byte count against the cap; shrinking never fails. */
static void *box_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    box *b = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        b->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > b->cap - b->used) return NULL;
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize <= old) {
            b->used -= old - nsize;
            return ptr;
        }
        return NULL;
    }
    b->used = b->used - old + nsize;
    return p;
}

static box *box_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* Instruction budget and wall clock; once killed, every later call raises again. */
static void box_hook(lua_State *L, lua_Debug *ar) {
    box *b = box_of(L);
    b->instr += HOOK_EVERY;
    if (!b->killed) {
        if (b->instr > INSTR_BUDGET)
            snprintf(b->kill_msg, sizeof b->kill_msg,
                     "the file ran more than %llu Lua instructions (an endless loop?); a config file only builds "
                     "a table",
                     (unsigned long long)INSTR_BUDGET);
        else if (now_ns() > b->deadline_ns)
            snprintf(b->kill_msg, sizeof b->kill_msg, "the file ran for more than %d ms (an endless loop?)", WALL_MS);
        else
            return;
        b->killed = 1;
        if (lua_getinfo(L, "l", ar)) b->kill_line = ar->currentline;
    }
    lua_pushstring(L, b->kill_msg);
    lua_error(L);
}

static int l_getenv(lua_State *L) {
    lua_pushstring(L, getenv(luaL_checkstring(L, 1)));
    return 1;
}

static int os_missing(lua_State *L) {
    const char *k = lua_tostring(L, 2);
    return luaL_error(L, "os.%s is not available in a config file (only os.getenv is)", k ? k : "?");
}

static int undefined_global(lua_State *L) {
    static const char *const removed[] = {"io", "require", "load", "loadfile", "dofile", "debug", "package",
                                          "print", "pcall", "xpcall", "collectgarbage", "coroutine",
                                          "setmetatable", "loadstring", NULL};
    const char *k = lua_tostring(L, 2);
    if (k && in_list(k, removed))
        return luaL_error(L, "'%s' is not available in a config file (no io, require or load; os has only getenv)", k);
    return luaL_error(L, "undefined global '%s'", k ? k : "?");
}

/* Runs protected: the allowed libraries and the environment table (returned). */
static int setup(lua_State *L) {
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},       {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* patterns run inside C where the hook cannot stop them; dump makes binary chunks */
    static const char *const gone[] = {"dump", "find", "match", "gmatch", "gsub", NULL};
    lua_getglobal(L, LUA_STRLIBNAME);
    for (int i = 0; gone[i]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, gone[i]);
    }
    lua_pop(L, 1);
    static const char *const base_ok[] = {"assert", "error", "getmetatable", "ipairs", "next", "pairs",
                                          "rawequal", "rawget", "rawlen", "rawset", "select", "tonumber",
                                          "tostring", "type", "_VERSION", LUA_STRLIBNAME, LUA_TABLIBNAME,
                                          LUA_MATHLIBNAME, LUA_UTF8LIBNAME, NULL};
    lua_newtable(L);
    int env = lua_gettop(L);
    for (int i = 0; base_ok[i]; i++) {
        lua_getglobal(L, base_ok[i]);
        lua_setfield(L, env, base_ok[i]);
    }
    lua_newtable(L);                               /* os = { getenv } */
    lua_pushcfunction(L, l_getenv);
    lua_setfield(L, -2, "getenv");
    lua_newtable(L);
    lua_pushcfunction(L, os_missing);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_setfield(L, env, "os");
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_newtable(L);
    lua_pushcfunction(L, undefined_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, env);
    return 1;
}

/* "config:LINE: rest" → line and rest. */
static const char *split_line(const char *m, int *line) {
    const char *p = CHUNKNAME + 1;
    size_t n = strlen(p);
    if (strncmp(m, p, n) != 0 || m[n] != ':' || !isdigit((unsigned char)m[n + 1])) return m;
    const char *q = m + n + 1;
    long v = 0;
    while (isdigit((unsigned char)*q) && v < 100000000) v = v * 10 + (*q++ - '0');
    if (*q != ':') return m;
    *line = (int)v;
    q++;
    return *q == ' ' ? q + 1 : q;
}

/* The error on top of the stack (status s) into the stage. */
static void lua_fail(stage *st, lua_State *L, box *b, int s, const char *what) {
    if (b->killed) {
        if (st->err) st->err->line = b->kill_line;
        fail(st, VIGIL_EPARSE, "%s", b->kill_msg);
        return;
    }
    if (s == LUA_ERRMEM) {
        fail(st, VIGIL_EPARSE, "the file needs more than %zu MiB of memory; a config file only builds a table",
             MEM_CAP >> 20);
        return;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        fail(st, VIGIL_EPARSE, "%s: error() was called with %s, not a message", what, lua_kind(L, -1));
        return;
    }
    int line = 0;
    const char *rest = split_line(lua_tostring(L, -1), &line);
    if (st->err) st->err->line = line;
    fail(st, VIGIL_EPARSE, "%s: %s", what, rest);
}

static int read_file(stage *st, const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(st, errno == ENOENT ? VIGIL_ENOTFOUND : VIGIL_EIO,
                    "cannot open the config file: %s; give an existing file to --config (or VIGIL_CONFIG)",
                    strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && !S_ISREG(sb.st_mode)) {
        fclose(f);
        return fail(st, VIGIL_EIO, "the config path is not a regular file; give the path of a .lua file");
    }
    char *buf = malloc(FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return no_memory(st);
    }
    size_t n = fread(buf, 1, FILE_MAX + 1, f);
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return fail(st, VIGIL_EIO, "cannot read the config file: %s", strerror(e));
    }
    if (n > FILE_MAX) {
        free(buf);
        return fail(st, VIGIL_ETOOBIG, "the config file is larger than %zu KiB; a config file is a short table",
                    FILE_MAX >> 10);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Run the source in a fresh sandbox and walk the table it returns into st. */
static int run_file(stage *st, const char *src, size_t len) {
    box b;
    memset(&b, 0, sizeof b);
    b.cap = MEM_CAP;
    lua_State *L = lua_newstate(box_alloc, &b);
    if (!L) return no_memory(st);
    int r = -1;
    lua_pushcfunction(L, setup);
    int s = lua_pcall(L, 0, 1, 0);
    if (s != LUA_OK) {
        no_memory(st);
        goto out;
    }
    int env = lua_gettop(L);
    if (len >= 4 && memcmp(src, LUA_SIGNATURE, 4) == 0) {
        fail(st, VIGIL_EPARSE, "the file is a precompiled Lua chunk; a config file must be Lua source text");
        goto out;
    }
    s = luaL_loadbufferx(L, src, len, CHUNKNAME, "t");
    if (s != LUA_OK) {
        lua_fail(st, L, &b, s, s == LUA_ERRSYNTAX ? "syntax error" : "cannot load the file");
        goto out;
    }
    lua_pushvalue(L, env);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);   /* a chunk's first upvalue is _ENV */
    int base = lua_gettop(L) - 1;
    b.deadline_ns = now_ns() + (int64_t)WALL_MS * 1000000;
    lua_sethook(L, box_hook, LUA_MASKCOUNT, HOOK_EVERY);
    s = lua_pcall(L, 0, LUA_MULTRET, 0);
    lua_sethook(L, NULL, 0, 0);
    if (s != LUA_OK) {
        lua_fail(st, L, &b, s, "error while running the file");
        goto out;
    }
    int nret = lua_gettop(L) - base;
    if (nret == 0) {
        fail(st, VIGIL_EPARSE, "the file returns nothing; it must end with return { … } (a table of settings, "
                               "e.g. return { rules = \"rules\" })");
        goto out;
    }
    if (nret > 1 || lua_type(L, base + 1) != LUA_TTABLE) {
        fail(st, VIGIL_EPARSE, "the file returns %s%s; it must return one table: return { rules = \"rules\", … }",
             nret > 1 ? "several values, the first " : "", lua_kind(L, base + 1));
        goto out;
    }
    walker w = {.st = st, .L = L};
    lua_pushcfunction(L, walk_main);
    lua_pushlightuserdata(L, &w);
    lua_pushvalue(L, base + 1);
    s = lua_pcall(L, 2, 0, 0);
    if (s != LUA_OK)
        lua_fail(st, L, &b, s, "reading the table");
    else if (st->status == VIGIL_OK)
        r = 0;
out:
    lua_close(L);
    return r;
}

vigil_status vigil_config_load_file(const char *path, vigil_server_config *cfg, vigil_config_owner *owner,
                                    vigil_error *err) {
    stage st;
    stage_begin(&st, cfg, owner, path, err);
    char *src = NULL;
    size_t len = 0;
    if (read_file(&st, path, &src, &len)) return stage_abort(&st);
    int r = run_file(&st, src, len);
    free(src);
    if (r) return stage_abort(&st);
    stage_commit(&st, cfg);
    return VIGIL_OK;
}
