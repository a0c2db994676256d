/* config.c — the settings of `vigil serve` (DESIGN.md §5; the shape is in
 * config.h): their defaults, the one table that describes them, the parsers
 * of their values, and the VIGIL_* environment variables and command-line
 * flags. The Lua config file is read by config_file.c through the same table
 * and parsers (config_int.h).
 *
 * It exists so that a deployment is one file plus a few variables, and so
 * that a mistake in either stops the server at once with a message that says
 * what to write, instead of starting with a half-read configuration. Every
 * scalar key is described once, in `cfg_settings[]`: its path in the file,
 * its variable, its kind (which parser, which message) and where it goes in
 * the config; the file walker, the environment and the flags all go through
 * the same parser, so a value means the same wherever it is written.
 *
 * Nothing is half applied: each call works on a copy of the config (a
 * "stage") and copies it back only when everything was read; strings it
 * allocated are handed back to the owner's mark on failure. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "config_int.h"
#include "server/state/redis.h"
#include "server/ingest/nats_opts.h"   /* vigil_nats_url_redact: no password in a message */

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
const char *cfg_own(vigil_config_owner *o, const char *s, size_t len) {
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
    cfg->partitions = 0;   /* by mode, at start: 16, or 32 in a cluster (server.c) */
    cfg->queue_cap = 65536;
    cfg->max_body = (size_t)16 << 20;
    cfg->idle_timeout_ms = 30000;
    cfg->stream = "VIGIL_EVENTS";
    cfg->consumer = "vigil";
    cfg->fetch_batch = 1000;
    cfg->data_dir = "./vigil-data";
    cfg->snapshot_interval_ms = 10000;
    cfg->outbox_fsync = 1;
    vigil_limits_fill(&cfg->limits);
    vigil_event_opts_init(&cfg->ev);
}

/* ---- the stage: a copy changed in place, committed only when all went well -------- */


void cfg_stage_begin(stage *st, const vigil_server_config *cfg, vigil_config_owner *o, const char *file,
                        vigil_error *err) {
    memset(st, 0, sizeof *st);
    st->cfg = *cfg;
    st->o = o;
    st->mark = o->n;
    st->err = err;
    vigil_error_clear(err);
    if (err && file) snprintf(err->file, sizeof err->file, "%s", file);
}

void cfg_stage_commit(stage *st, vigil_server_config *cfg) {
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

vigil_status cfg_stage_abort(stage *st) {
    free(st->time_store);
    free(st->id_store);
    st->time_store = st->id_store = NULL;
    own_rollback(st->o, st->mark);
    return st->status != VIGIL_OK ? st->status : VIGIL_EPARSE;
}

int cfg_fail(stage *st, vigil_status s, const char *fmt, ...) {
    if (st->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->err->msg, sizeof st->err->msg, fmt, ap);
        va_end(ap);
    }
    st->status = s;
    return -1;
}

int cfg_no_memory(stage *st) { return cfg_fail(st, VIGIL_ENOMEM, "out of memory while reading the configuration"); }

/* ---- where a value came from, and how to write one there ------------------------- */



/* v made safe to print: at most 60 bytes, control bytes as '?', and for a
 * Lua string literal '"' and '\' escaped. */
void cfg_printable(char *out, size_t n, const char *v, int lua) {
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
const char *cfg_form(char *buf, size_t n, const origin *s, const char *v, int quoted) {
    char p[256];
    cfg_printable(p, sizeof p, v, s->k == SRC_FILE && quoted);
    if (s->k == SRC_FILE)
        snprintf(buf, n, quoted ? "%s = \"%s\"" : "%s = %s", s->name, p);
    else if (s->k == SRC_ENV)
        snprintf(buf, n, "%s=%s", s->name, p);
    else
        snprintf(buf, n, "%s %s", s->name, p);
    return buf;
}

/* ---- the settings ------------------------------------------------------------------ */



#define OFF(f) offsetof(vigil_server_config, f)
#define EOFF(f) offsetof(vigil_endpoint_config, f)
#define TOFF(f) offsetof(vigil_token_config, f)
#define LOFF(f) offsetof(vigil_server_config, limits.f)
#define DUR_MAX 9000000000000000LL

const setting cfg_settings[] = {
    {"rules", "VIGIL_RULES", K_PATH, OFF(rules), 0, 0, 0, "rules"},
    {"watch", "VIGIL_WATCH", K_BOOL, OFF(watch), 0, 0, 0, "false"},
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
    /* transport security: HTTPS, NATS credentials and TLS, Redis AUTH ("" = none) */
    {"tls_cert", "VIGIL_TLS_CERT", K_FILE, OFF(tls_cert), 0, 0, 1, "/etc/vigil/tls/cert.pem"},
    {"tls_key", "VIGIL_TLS_KEY", K_FILE, OFF(tls_key), 0, 0, 1, "/etc/vigil/tls/key.pem"},
    {"nats.user", "VIGIL_NATS_USER", K_USER, OFF(nats_user), 0, 0, 1, "vigil"},
    {"nats.password", "VIGIL_NATS_PASSWORD", K_PASSWORD, OFF(nats_password), 0, 0, 1, "<the password>"},
    {"nats.token", "VIGIL_NATS_TOKEN", K_PASSWORD, OFF(nats_token), 0, 0, 1, "<the token>"},
    {"nats.creds", "VIGIL_NATS_CREDS", K_FILE, OFF(nats_creds), 0, 0, 1, "/etc/vigil/vigil.creds"},
    {"nats.tls", "VIGIL_NATS_TLS", K_BOOL, OFF(nats_tls), 0, 0, 0, "true"},
    {"nats.tls.ca", "VIGIL_NATS_TLS_CA", K_FILE, OFF(nats_tls_ca), 0, 0, 1, "/etc/vigil/nats-ca.pem"},
    {"nats.tls.cert", "VIGIL_NATS_TLS_CERT", K_FILE, OFF(nats_tls_cert), 0, 0, 1, "/etc/vigil/nats-client.pem"},
    {"nats.tls.key", "VIGIL_NATS_TLS_KEY", K_FILE, OFF(nats_tls_key), 0, 0, 1, "/etc/vigil/nats-client-key.pem"},
    {"redis.user", "VIGIL_REDIS_USER", K_USER, OFF(redis_user), 0, 0, 1, "vigil"},
    {"redis.password", "VIGIL_REDIS_PASSWORD", K_PASSWORD, OFF(redis_password), 0, 0, 1, "<the password>"},
    {"store.data_dir", "VIGIL_DATA_DIR", K_DIR, OFF(data_dir), 0, 0, 1, "./vigil-data"},
    {"store.snapshot_interval", "VIGIL_SNAPSHOT_INTERVAL", K_DURATION, OFF(snapshot_interval_ms), 1, DUR_MAX, 0,
     "10s"},
    {"store.outbox_fsync", "VIGIL_OUTBOX_FSYNC", K_BOOL, OFF(outbox_fsync), 0, 0, 0, "true"},
    {"webhook_secret", "VIGIL_WEBHOOK_SECRET", K_SECRET, OFF(webhook_secret), 0, 0, 1, EXAMPLE_SECRET},
    {"webhooks", "VIGIL_WEBHOOKS", K_WEBHOOK_URLS, 0, 0, 0, 1, "https://hooks.example.com/vigil"},
    {"cluster.instance", "VIGIL_CLUSTER_INSTANCE", K_NATS_NAME, OFF(cluster_instance), 0, 0, 0, "vigil-a"},
    {"cluster.lease", "VIGIL_CLUSTER_LEASE", K_DURATION, OFF(cluster_lease_ms), 500, 3600000, 0, "10s"},
    {"cluster.heartbeat", "VIGIL_CLUSTER_HEARTBEAT", K_DURATION, OFF(cluster_heartbeat_ms), 100, 3600000, 0, "3s"},
    {"cluster.stream", "VIGIL_CLUSTER_STREAM", K_NATS_NAME, OFF(cluster_stream), 0, 0, 0, "VIGIL_KEYED"},
    {"cluster.subject", "VIGIL_CLUSTER_SUBJECT", K_SUBJECT, OFF(cluster_subject), 0, 0, 0, "vigil.keyed"},
    {"cluster.kv_prefix", "VIGIL_CLUSTER_KV_PREFIX", K_NATS_NAME, OFF(cluster_kv_prefix), 0, 0, 0, "VIGIL"},
    {"log_format", "VIGIL_LOG_FORMAT", K_LOG_FORMAT, OFF(log_json), 0, 0, 0, "json"},
    {"tokens_file", "VIGIL_TOKENS_FILE", K_FILE, OFF(tokens_file), 0, 0, 1, "/etc/vigil/tokens"},
    {"metrics_token", "VIGIL_METRICS_TOKEN", K_TOKEN, OFF(metrics_token), 0, 0, 1, "<a long random string>"},
    {"limits.max_fields", "VIGIL_MAX_FIELDS", K_INT, LOFF(max_fields), 1, 1000000, 0, "1000"},
    {"limits.max_depth", "VIGIL_MAX_DEPTH", K_INT, LOFF(max_depth), 1, 1000, 0, "32"},
    {"limits.max_key_bytes", "VIGIL_MAX_KEY_BYTES", K_INT, LOFF(max_key_bytes), 1, 1 << 20, 0, "1024"},
    {"limits.max_lines", "VIGIL_MAX_LINES", K_COUNT, LOFF(max_lines), 1, 1 << 24, 0, "100000"},
    {"limits.max_rules", "VIGIL_MAX_RULES", K_INT, LOFF(max_rules), 1, 1000000, 0, "1000"},
    {"limits.max_sse_clients", "VIGIL_MAX_SSE_CLIENTS", K_INT, LOFF(max_sse_clients), 1, 100000, 0, "64"},
    {"limits.max_conns_per_ip", "VIGIL_MAX_CONNS_PER_IP", K_INT, LOFF(max_conns_per_ip), 1, 100000, 0, "64"},
    {"limits.request_timeout", "VIGIL_REQUEST_TIMEOUT", K_DURATION, LOFF(request_timeout_ms), 1000, 86400000, 0,
     "30s"},
    {"limits.max_header_bytes", "VIGIL_MAX_HEADER_BYTES", K_BYTES, LOFF(max_header_bytes), 4096, 1 << 24, 0,
     "32KiB"},
    {NULL, NULL, K_PATH, 0, 0, 0, 0, NULL}};

const setting cfg_endpoint_settings[] = {
    {"name", NULL, K_EP_NAME, EOFF(name), 0, 0, 0, "ops"},
    {"url", NULL, K_HTTP_URL, EOFF(url), 0, 0, 0, "https://hooks.example.com/vigil"},
    {"secret", NULL, K_SECRET, EOFF(secret), 0, 0, 1, EXAMPLE_SECRET},
    {"min_severity", NULL, K_SEVERITY, EOFF(min_severity), 0, 0, 0, "high"},
    {"concurrency", NULL, K_INT, EOFF(concurrency), 1, 1024, 0, "16"},
    {"timeout", NULL, K_MS_LONG, EOFF(timeout_ms), 1, DUR_MAX, 0, "5s"},
    {"backoff", NULL, K_MS_LONG, EOFF(backoff_ms), 1, DUR_MAX, 0, "1s"},
    {"max_backoff", NULL, K_MS_LONG, EOFF(max_backoff_ms), 1, DUR_MAX, 0, "1h"},
    {"horizon", NULL, K_MS_LONG, EOFF(horizon_ms), 1, DUR_MAX, 0, "24h"},
    {"max_attempts", NULL, K_INT, EOFF(max_attempts), 1, 1000000, 0, "20"},
    {NULL, NULL, K_PATH, 0, 0, 0, 0, NULL}};

const setting cfg_token_settings[] = {
    {"name", NULL, K_EP_NAME, TOFF(name), 0, 0, 0, "shop"},
    {"token", NULL, K_TOKEN, TOFF(token), 0, 0, 0, "<a long random string>"},
    {"role", NULL, K_ROLE, TOFF(role), 0, 0, 0, "viewer"},
    {"rate", NULL, K_INT, TOFF(rate), 1, 100000000, 0, "5000"},
    {NULL, NULL, K_PATH, 0, 0, 0, 0, NULL}};

const setting *cfg_find_setting(const setting *tab, const char *key) {
    for (const setting *d = tab; d->key; d++)
        if (strcmp(d->key, key) == 0) return d;
    return NULL;
}

/* The example is a Lua string in the file unless the kind is a number or a boolean. */
int cfg_example_quoted(const setting *d) { return !(d->k == K_INT || d->k == K_COUNT || d->k == K_BOOL); }

/* What a good value is, for messages. */
const char *cfg_describe(const setting *d, const origin *s, char *buf, size_t n) {
    switch (d->k) {
    case K_PATH: return "a rules directory or file";
    case K_LOG_FORMAT: return "a log format: text or json";
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
    case K_FILE: return "a file path (\"\" for none)";
    case K_USER: return "a user name (1 to 128 characters, no spaces)";
    case K_PASSWORD: return "a password or token (1 to 256 visible characters, no spaces)";
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
static int is_secret(const setting *d) { return d->k == K_SECRET || d->k == K_TOKEN || d->k == K_PASSWORD; }

/* "<written> is not <what>; write <example>", or with `why` instead of "is not <what>". */
int cfg_bad_value(stage *st, const setting *d, const origin *s, const char *shown, int quoted, const char *why) {
    char a[320], b[320], w[160], url[512];
    if (is_secret(d)) {
        shown = "...";
        quoted = 1;
    } else if (d->k == K_NATS_URL || d->k == K_REDIS_URL || d->k == K_HTTP_URL || d->k == K_WEBHOOK_URLS) {
        vigil_nats_url_redact(shown, url, sizeof url);   /* user:password@ of every URL as ***@ */
        shown = url;
    }
    cfg_form(a, sizeof a, s, shown, quoted);
    cfg_form(b, sizeof b, s, d->example, s->k == SRC_FILE && cfg_example_quoted(d));
    if (why) return cfg_fail(st, VIGIL_EPARSE, "%s %s; write %s", a, why, b);
    return cfg_fail(st, VIGIL_EPARSE, "%s is not %s; write %s", a, cfg_describe(d, s, w, sizeof w), b);
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

int cfg_has_space_or_ctl(const char *v) {
    for (; *v; v++)
        if (isspace((unsigned char)*v) || (unsigned char)*v < 0x20 || *v == 0x7f) return 1;
    return 0;
}

static int check_listen(const char *v) {
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v || cfg_has_space_or_ctl(v)) return -1;
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
    if (n == 0 || n > maxlen || cfg_has_space_or_ctl(v)) return -1;
    return strpbrk(v, forbidden) ? -1 : 0;
}

static int check_ep_name(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 64) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '_') return -1;
    return 0;
}

int cfg_in_list(const char *v, const char *const *list) {
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
    const char *c = cfg_own(st->o, v, strlen(v));
    if (!c) return cfg_no_memory(st);
    *(const char **)((char *)base + d->off) = c;
    return 0;
}

int cfg_store_int(stage *st, void *base, const setting *d, const origin *s, long long n, const char *shown, int quoted) {
    if (n < d->min || n > d->max) return cfg_bad_value(st, d, s, shown, quoted, NULL);
    if (d->k == K_INT)
        *(int *)((char *)base + d->off) = (int)n;
    else
        *(size_t *)((char *)base + d->off) = (size_t)n;
    return 0;
}

int cfg_store_ms(stage *st, void *base, const setting *d, const origin *s, int64_t ms, const char *shown, int quoted) {
    if (ms < d->min) return cfg_bad_value(st, d, s, shown, quoted, "must be more than 0");
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
        return cfg_no_memory(st);   /* the list was checked before: only an allocation can fail */
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
                return cfg_bad_value(st, d, s, v, 1, w);
            }
            if (check_url(p, len, http_schemes)) {
                char u[300], w[400];
                snprintf(u, sizeof u, "%.*s", (int)(len > 200 ? 200 : len), p);
                char pu[256];
                cfg_printable(pu, sizeof pu, u, 0);
                snprintf(w, sizeof w, "has '%s', which is not an http:// or https:// URL", pu);
                return cfg_bad_value(st, d, s, v, 1, w);
            }
            if (!(eps[n++].url = cfg_own(st->o, p, len))) return cfg_no_memory(st);
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
int cfg_parse_value(stage *st, const setting *d, void *base, const char *v, const origin *s) {
    char w[200];
    if (d->optional && !*v && d->k != K_DIR && d->k != K_WEBHOOK_URLS) {
        *(const char **)((char *)base + d->off) = NULL;
        return 0;
    }
    switch (d->k) {
    case K_LOG_FORMAT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) return cfg_bad_value(st, d, s, v, 1, NULL);
        *(int *)((char *)base + d->off) = strcmp(v, "json") == 0;
        return 0;
    case K_PATH:
        if (!*v) return cfg_bad_value(st, d, s, v, 1, "is empty: a rules directory or file is required");
        return store_str(st, base, d, v);
    case K_LISTEN:
        if (check_listen(v)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_INT:
    case K_COUNT: {
        long long n;
        if (parse_ll(v, &n)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return cfg_store_int(st, base, d, s, n, v, 1);
    }
    case K_BYTES: {
        long long n;
        if (parse_size(v, &n)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return cfg_store_int(st, base, d, s, n, v, 1);
    }
    case K_DURATION:
    case K_MS_LONG: {
        int64_t ms;
        if (parse_duration(v, &ms)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return cfg_store_ms(st, base, d, s, ms, v, 1);
    }
    case K_BOOL: {
        int b;
        if (parse_bool(v, &b)) return cfg_bad_value(st, d, s, v, 1, NULL);
        *(int *)((char *)base + d->off) = b;
        return 0;
    }
    case K_TIME_FIELDS:
    case K_ID_FIELDS:
        if (check_fields(v)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return set_fields(st, d, v);
    case K_TIME_FORMAT:
        if (vigil_time_format_parse(v, &st->cfg.ev.decode.time_format) != VIGIL_OK)
            return cfg_bad_value(st, d, s, v, 1, NULL);
        return 0;
    case K_NATS_URL:
        if (check_nats_url(v))
            return cfg_bad_value(st, d, s, v, 1,
                             "is not a NATS URL: it must start with nats:// or tls:// and name a host "
                             "(several URLs are separated by commas)");
        return store_str(st, base, d, v);
    case K_SUBJECT:
        if (check_chars(v, 255, "")) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_NATS_NAME:
        if (check_chars(v, 255, ".*>/\\")) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_REDIS_URL: {
        char host[256], user[128], pass[256];
        int port, db;
        vigil_error e;
        vigil_error_clear(&e);
        if (vigil_redis_url_parse(v, host, sizeof host, &port, &db, user, sizeof user, pass, sizeof pass, &e) !=
                VIGIL_OK) {
            snprintf(w, sizeof w, "is not a Redis URL (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
            return cfg_bad_value(st, d, s, v, 1, w);
        }
        return store_str(st, base, d, v);
    }
    case K_PREFIX:
        if (check_chars(v, 64, "{}")) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_DIR:
        return store_str(st, base, d, v);
    case K_FILE:
        for (const char *c = v; *c; c++)   /* spaces are fine in a path, control bytes are not */
            if ((unsigned char)*c < 0x20 || *c == 0x7f) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_USER:
        if (check_chars(v, 128, "")) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_PASSWORD:
        if (check_chars(v, 256, "")) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_SECRET:
        if (check_secret(v)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_WEBHOOK_URLS:
        return set_webhook_urls(st, d, s, v);
    case K_HTTP_URL:
        if (check_url(v, strlen(v), http_schemes))
            return cfg_bad_value(st, d, s, v, 1, "is not a webhook URL: it must start with http:// or https:// and name a host");
        return store_str(st, base, d, v);
    case K_EP_NAME:
        if (check_ep_name(v)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_SEVERITY:
        if (!cfg_in_list(v, severities)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_TOKEN:
        if (check_chars(v, 256, "")) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    case K_ROLE:
        if (!cfg_in_list(v, roles)) return cfg_bad_value(st, d, s, v, 1, NULL);
        return store_str(st, base, d, v);
    }
    return cfg_fail(st, VIGIL_EINVAL, "internal error: setting '%s' has no parser", d->key);
}

/* ---- environment and flags ------------------------------------------------------------ */

vigil_status vigil_config_apply_env(vigil_server_config *cfg, vigil_config_owner *owner, vigil_error *err) {
    stage st;
    cfg_stage_begin(&st, cfg, owner, NULL, err);
    for (const setting *d = cfg_settings; d->key; d++) {
        const char *v = getenv(d->env);
        if (!v || (!*v && !d->optional)) continue;
        origin s = {.k = SRC_ENV};
        snprintf(s.name, sizeof s.name, "%s", d->env);
        if (cfg_parse_value(&st, d, &st.cfg, v, &s)) return cfg_stage_abort(&st);
    }
    cfg_stage_commit(&st, cfg);
    return VIGIL_OK;
}

vigil_status vigil_config_set(vigil_server_config *cfg, vigil_config_owner *owner, const char *key,
                              const char *value, const char *source, vigil_error *err) {
    stage st;
    cfg_stage_begin(&st, cfg, owner, NULL, err);
    const setting *d = cfg_find_setting(cfg_settings, key);
    if (!d) {
        cfg_fail(&st, VIGIL_ENOTFOUND, "no setting named '%s'", key);
        return cfg_stage_abort(&st);
    }
    origin s = {.k = source && source[0] == '-' ? SRC_FLAG : SRC_ENV};
    snprintf(s.name, sizeof s.name, "%s", source ? source : d->env);
    if (cfg_parse_value(&st, d, &st.cfg, value, &s)) return cfg_stage_abort(&st);
    cfg_stage_commit(&st, cfg);
    return VIGIL_OK;
}

