/* test_config.c — CUnit suite for the settings of `vigil serve` (api/config.c).
 *
 * The config file and the VIGIL_* variables are the operator's whole
 * interface to a deployment, so this suite pins down: the defaults, every key
 * of the file read into its field, the shorthands, the variables overriding
 * the file, flags through vigil_config_set, the text of each error (the file,
 * the line when Lua knows it, what is wrong and what to write), that a
 * failed call leaves the config byte for byte as it was, the Lua sandbox (no
 * io, no os.execute, no require/load, an endless loop stopped), and that the
 * commented example deploy/vigil.conf.lua loads. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const char *const env_vars[] = {
    "VIGIL_RULES", "VIGIL_LISTEN", "VIGIL_WORKERS", "VIGIL_PARTITIONS", "VIGIL_QUEUE_CAP", "VIGIL_MAX_BODY",
    "VIGIL_TIME_FIELD", "VIGIL_ID_FIELD", "VIGIL_TIME_FORMAT", "VIGIL_ALLOWED_LATENESS",
    "VIGIL_MAX_OUT_OF_ORDERNESS", "VIGIL_IDLE_TIMEOUT", "VIGIL_NATS", "VIGIL_SUBJECT", "VIGIL_JETSTREAM",
    "VIGIL_STREAM", "VIGIL_CONSUMER", "VIGIL_FETCH_BATCH", "VIGIL_REDIS", "VIGIL_REDIS_PREFIX", "VIGIL_DATA_DIR",
    "VIGIL_SNAPSHOT_INTERVAL", "VIGIL_OUTBOX_FSYNC", "VIGIL_WEBHOOK_SECRET", "VIGIL_WEBHOOKS", "VIGIL_CONFIG",
    "VIGIL_TOKENS_FILE", "VIGIL_METRICS_TOKEN", "VIGIL_MAX_FIELDS", "VIGIL_MAX_DEPTH", "VIGIL_MAX_KEY_BYTES",
    "VIGIL_MAX_LINES", "VIGIL_MAX_RULES", "VIGIL_MAX_SSE_CLIENTS", "VIGIL_MAX_CONNS_PER_IP", "VIGIL_REQUEST_TIMEOUT",
    "VIGIL_MAX_HEADER_BYTES", NULL};

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static void clear_env(void) {
    for (int i = 0; env_vars[i]; i++) unsetenv(env_vars[i]);
}

static char last_path[256];

/* Write src to a fresh temporary file; its path stays in last_path. */
static const char *write_tmp(const char *src) {
    snprintf(last_path, sizeof last_path, "/tmp/vigil-config-test-XXXXXX");
    int fd = mkstemp(last_path);
    if (fd < 0) return NULL;
    size_t n = strlen(src);
    if (write(fd, src, n) != (ssize_t)n) {
        close(fd);
        return NULL;
    }
    close(fd);
    return last_path;
}

/* A config with defaults, an owner, and the result of loading src. */
typedef struct fixture {
    vigil_server_config cfg;
    vigil_config_owner *o;
    vigil_error err;
    vigil_status st;
} fixture;

static void fx_init(fixture *f) {
    vigil_config_defaults(&f->cfg);
    f->o = vigil_config_owner_create();
    vigil_error_clear(&f->err);
}

static void fx_free(fixture *f) {
    vigil_event_opts_free(&f->cfg.ev);
    vigil_config_owner_destroy(f->o);
}

static vigil_status fx_load(fixture *f, const char *src) {
    const char *p = write_tmp(src);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    f->st = vigil_config_load_file(p, &f->cfg, f->o, &f->err);
    unlink(p);
    return f->st;
}

/* Load src, expect failure with msg containing `want` (and the given line
 * when line >= 0), and the config untouched byte for byte. */
static void expect_error(const char *src, int line, const char *want) {
    fixture f;
    fx_init(&f);
    /* something already read, so that "untouched" means more than defaults */
    CU_ASSERT_EQUAL(fx_load(&f, "return { workers = 3, time_field = {'a', 'b'}, nats = 'nats://n:4222' }"), VIGIL_OK);
    vigil_server_config before = f.cfg;
    vigil_status st = fx_load(&f, src);
    CU_ASSERT_NOT_EQUAL(st, VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.err.file, last_path);
    if (!strstr(f.err.msg, want)) {
        fprintf(stderr, "\n  want: %s\n  got:  %s (line %d)\n", want, f.err.msg, f.err.line);
        CU_FAIL("error message");
    }
    if (line >= 0) CU_ASSERT_EQUAL(f.err.line, line);
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    CU_ASSERT_EQUAL(f.cfg.workers, 3);
    CU_ASSERT_EQUAL(f.cfg.ev.decode.ntime_fields, 2);
    CU_ASSERT_STRING_EQUAL(f.cfg.ev.decode.time_fields[1], "b");
    fx_free(&f);
}

/* ---- defaults and every key ---------------------------------------------------------- */

static void test_defaults(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_STRING_EQUAL(f.cfg.rules, "rules");
    CU_ASSERT_STRING_EQUAL(f.cfg.listen, "127.0.0.1:8080");
    CU_ASSERT_STRING_EQUAL(f.cfg.subject, "vigil.events.>");
    CU_ASSERT_STRING_EQUAL(f.cfg.redis_prefix, "vigil");
    CU_ASSERT_PTR_NULL(f.cfg.nats_url);
    CU_ASSERT_PTR_NULL(f.cfg.redis_url);
    CU_ASSERT_PTR_NULL(f.cfg.webhook_secret);
    CU_ASSERT_EQUAL(f.cfg.workers, 2);
    CU_ASSERT_EQUAL(f.cfg.partitions, 0);   /* chosen at start by mode: 16, or 32 in a cluster */
    CU_ASSERT_EQUAL(f.cfg.queue_cap, 65536);
    CU_ASSERT_EQUAL(f.cfg.max_body, 16u << 20);
    CU_ASSERT_EQUAL(f.cfg.allowed_lateness_ms, 0);
    CU_ASSERT_EQUAL(f.cfg.max_out_of_orderness_ms, 0);
    CU_ASSERT_EQUAL(f.cfg.idle_timeout_ms, 30000);
    CU_ASSERT_EQUAL(f.cfg.jetstream, 0);
    CU_ASSERT_STRING_EQUAL(f.cfg.stream, "VIGIL_EVENTS");
    CU_ASSERT_STRING_EQUAL(f.cfg.consumer, "vigil");
    CU_ASSERT_EQUAL(f.cfg.fetch_batch, 1000);
    CU_ASSERT_STRING_EQUAL(f.cfg.data_dir, "./vigil-data");
    CU_ASSERT_EQUAL(f.cfg.snapshot_interval_ms, 10000);
    CU_ASSERT_EQUAL(f.cfg.outbox_fsync, 1);
    CU_ASSERT_EQUAL(f.cfg.nwebhooks + f.cfg.nendpoints + f.cfg.ntokens, 0);
    CU_ASSERT_EQUAL(f.cfg.ev.decode.ntime_fields, 1);
    CU_ASSERT_STRING_EQUAL(f.cfg.ev.decode.time_fields[0], "ts");
    CU_ASSERT_STRING_EQUAL(f.cfg.ev.decode.id_fields[0], "id");
    CU_ASSERT_EQUAL(f.cfg.ev.decode.time_format, VIGIL_TIME_AUTO);
    /* an empty table changes nothing */
    vigil_server_config before = f.cfg;
    CU_ASSERT_EQUAL(fx_load(&f, "return {}"), VIGIL_OK);
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    fx_free(&f);
}

static const char *full_config =
    "-- every key, none at its default\n"
    "local home = os.getenv('VIGIL_TEST_HOME') or '/nowhere'\n"
    "return {\n"
    "  rules = home .. '/rules', listen = '0.0.0.0:9090',\n"
    "  workers = 4, partitions = 32, queue_cap = 1000, max_body = '512KiB',\n"
    "  time_field = {'tx_datetime', 'report_datetime'}, id_field = 'transaction_id', time_format = 'rfc3339',\n"
    "  allowed_lateness = '5s', max_out_of_orderness = '2m', idle_timeout = 0,\n"
    "  nats = { url = 'nats://10.0.0.1:4222,tls://10.0.0.2:4222', subject = 'cards.>',\n"
    "           jetstream = { stream = 'CARDS', consumer = 'vigil-1', fetch_batch = 250 } },\n"
    "  redis = { url = 'redis://:pw@10.0.0.3:6380/2', prefix = 'fraud' },\n"
    "  store = { data_dir = '', snapshot_interval = '1m', outbox_fsync = false },\n"
    "  webhook_secret = '" SECRET "',\n"
    "  webhooks = {\n"
    "    { name = 'ops', url = 'https://ops.example.com/hook', secret = '" SECRET "',\n"
    "      rules = {'card_testing', 'velocity'}, min_severity = 'high', concurrency = 4,\n"
    "      timeout = '2s', backoff = '500ms', max_backoff = '10m', horizon = '1d' },\n"
    "    'http://127.0.0.1:9999/plain',\n"
    "    { url = 'http://127.0.0.1:9998/one', rules = 'big_amount' },\n"
    "  },\n"
    "  tokens = { { token = 'tok-ingest-0123456789', role = 'ingest' }, { token = 'tok-admin-0123456789', role = 'admin' } },\n"
    "}\n";

static void test_every_key(void) {
    fixture f;
    fx_init(&f);
    setenv("VIGIL_TEST_HOME", "/srv/vigil", 1);
    CU_ASSERT_EQUAL_FATAL(fx_load(&f, full_config), VIGIL_OK);
    unsetenv("VIGIL_TEST_HOME");
    vigil_server_config *c = &f.cfg;
    CU_ASSERT_STRING_EQUAL(c->rules, "/srv/vigil/rules");   /* os.getenv works */
    CU_ASSERT_STRING_EQUAL(c->listen, "0.0.0.0:9090");
    CU_ASSERT_EQUAL(c->workers, 4);
    CU_ASSERT_EQUAL(c->partitions, 32);
    CU_ASSERT_EQUAL(c->queue_cap, 1000);
    CU_ASSERT_EQUAL(c->max_body, 512 * 1024);
    CU_ASSERT_EQUAL(c->ev.decode.ntime_fields, 2);
    CU_ASSERT_STRING_EQUAL(c->ev.decode.time_fields[0], "tx_datetime");
    CU_ASSERT_STRING_EQUAL(c->ev.decode.time_fields[1], "report_datetime");
    CU_ASSERT_EQUAL(c->ev.decode.nid_fields, 1);
    CU_ASSERT_STRING_EQUAL(c->ev.decode.id_fields[0], "transaction_id");
    CU_ASSERT_EQUAL(c->ev.decode.time_format, VIGIL_TIME_RFC3339);
    CU_ASSERT_EQUAL(c->allowed_lateness_ms, 5000);
    CU_ASSERT_EQUAL(c->max_out_of_orderness_ms, 120000);
    CU_ASSERT_EQUAL(c->idle_timeout_ms, 0);
    CU_ASSERT_STRING_EQUAL(c->nats_url, "nats://10.0.0.1:4222,tls://10.0.0.2:4222");
    CU_ASSERT_STRING_EQUAL(c->subject, "cards.>");
    CU_ASSERT_EQUAL(c->jetstream, 1);
    CU_ASSERT_STRING_EQUAL(c->stream, "CARDS");
    CU_ASSERT_STRING_EQUAL(c->consumer, "vigil-1");
    CU_ASSERT_EQUAL(c->fetch_batch, 250);
    CU_ASSERT_STRING_EQUAL(c->redis_url, "redis://:pw@10.0.0.3:6380/2");
    CU_ASSERT_STRING_EQUAL(c->redis_prefix, "fraud");
    CU_ASSERT_STRING_EQUAL(c->data_dir, "");
    CU_ASSERT_EQUAL(c->snapshot_interval_ms, 60000);
    CU_ASSERT_EQUAL(c->outbox_fsync, 0);
    CU_ASSERT_STRING_EQUAL(c->webhook_secret, SECRET);
    CU_ASSERT_EQUAL_FATAL(c->nendpoints, 3);
    CU_ASSERT_EQUAL(c->nwebhooks, 0);
    const vigil_endpoint_config *e = &c->endpoints[0];
    CU_ASSERT_STRING_EQUAL(e->name, "ops");
    CU_ASSERT_STRING_EQUAL(e->url, "https://ops.example.com/hook");
    CU_ASSERT_STRING_EQUAL(e->secret, SECRET);
    CU_ASSERT_EQUAL_FATAL(e->nrules, 2);
    CU_ASSERT_STRING_EQUAL(e->rules[0], "card_testing");
    CU_ASSERT_STRING_EQUAL(e->rules[1], "velocity");
    CU_ASSERT_STRING_EQUAL(e->min_severity, "high");
    CU_ASSERT_EQUAL(e->concurrency, 4);
    CU_ASSERT_EQUAL(e->timeout_ms, 2000);
    CU_ASSERT_EQUAL(e->backoff_ms, 500);
    CU_ASSERT_EQUAL(e->max_backoff_ms, 600000);
    CU_ASSERT_EQUAL(e->horizon_ms, 86400000);
    e = &c->endpoints[1];   /* a bare URL: every option at its default (0/NULL) */
    CU_ASSERT_STRING_EQUAL(e->url, "http://127.0.0.1:9999/plain");
    CU_ASSERT_PTR_NULL(e->name);
    CU_ASSERT_PTR_NULL(e->secret);
    CU_ASSERT_PTR_NULL(e->min_severity);
    CU_ASSERT_EQUAL(e->nrules + e->concurrency + e->timeout_ms + e->backoff_ms + e->max_backoff_ms + e->horizon_ms, 0);
    e = &c->endpoints[2];   /* rules = one string */
    CU_ASSERT_EQUAL_FATAL(e->nrules, 1);
    CU_ASSERT_STRING_EQUAL(e->rules[0], "big_amount");
    CU_ASSERT_EQUAL_FATAL(c->ntokens, 2);
    CU_ASSERT_STRING_EQUAL(c->tokens[0].token, "tok-ingest-0123456789");
    CU_ASSERT_STRING_EQUAL(c->tokens[0].role, "ingest");
    CU_ASSERT_STRING_EQUAL(c->tokens[1].role, "admin");
    fx_free(&f);
}

/* max_attempts (endpoint.h): per endpoint, 1 or more; unset: 0 (no limit). */
static void test_webhook_max_attempts(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL_FATAL(fx_load(&f, "return { webhooks = { { url = 'http://a', max_attempts = 6 }, 'http://b' } }"),
                          VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(f.cfg.nendpoints, 2);
    CU_ASSERT_EQUAL(f.cfg.endpoints[0].max_attempts, 6);
    CU_ASSERT_EQUAL(f.cfg.endpoints[1].max_attempts, 0);
    fx_free(&f);
    expect_error("return { webhooks = { { url = 'http://a', max_attempts = 0 } } }", 0,
                 "webhooks[1].max_attempts = 0 is not a whole number from 1 to 1000000");
}

static void test_shorthands(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL_FATAL(fx_load(&f, "return { nats = 'nats://127.0.0.1:4222', redis = 'redis://127.0.0.1:6379',\n"
                                      "  max_body = 2048, time_field = 'a,b', allowed_lateness = '1.5s' }"),
                          VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_url, "nats://127.0.0.1:4222");
    CU_ASSERT_STRING_EQUAL(f.cfg.redis_url, "redis://127.0.0.1:6379");
    CU_ASSERT_EQUAL(f.cfg.max_body, 2048);
    CU_ASSERT_EQUAL(f.cfg.ev.decode.ntime_fields, 2);   /* "a,b" as the --time-field flag reads it */
    CU_ASSERT_EQUAL(f.cfg.allowed_lateness_ms, 1500);
    CU_ASSERT_EQUAL(f.cfg.jetstream, 0);
    CU_ASSERT_EQUAL(fx_load(&f, "return { nats = { jetstream = true }, max_body = '1 GiB' }"), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.jetstream, 1);
    CU_ASSERT_STRING_EQUAL(f.cfg.stream, "VIGIL_EVENTS");
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_url, "nats://127.0.0.1:4222");   /* kept from the first file */
    CU_ASSERT_EQUAL(f.cfg.max_body, 1u << 30);
    CU_ASSERT_EQUAL(fx_load(&f, "return { nats = { jetstream = false }, webhooks = {}, tokens = {} }"), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.jetstream, 0);
    fx_free(&f);
}

/* ---- environment and flags ------------------------------------------------------------ */

static void test_env_overrides_file(void) {
    fixture f;
    fx_init(&f);
    setenv("VIGIL_TEST_HOME", "/srv/vigil", 1);
    CU_ASSERT_EQUAL_FATAL(fx_load(&f, full_config), VIGIL_OK);
    unsetenv("VIGIL_TEST_HOME");
    clear_env();
    setenv("VIGIL_RULES", "/etc/vigil/rules", 1);
    setenv("VIGIL_LISTEN", "127.0.0.1:0", 1);
    setenv("VIGIL_WORKERS", "8", 1);
    setenv("VIGIL_PARTITIONS", "64", 1);
    setenv("VIGIL_QUEUE_CAP", "4096", 1);
    setenv("VIGIL_MAX_BODY", "1MiB", 1);
    setenv("VIGIL_TIME_FIELD", "t1,t2,t3", 1);
    setenv("VIGIL_ID_FIELD", "eid", 1);
    setenv("VIGIL_TIME_FORMAT", "ms", 1);
    setenv("VIGIL_ALLOWED_LATENESS", "1m", 1);
    setenv("VIGIL_MAX_OUT_OF_ORDERNESS", "0", 1);
    setenv("VIGIL_IDLE_TIMEOUT", "45s", 1);
    setenv("VIGIL_NATS", "nats://nats:4222", 1);
    setenv("VIGIL_SUBJECT", "ev.>", 1);
    setenv("VIGIL_JETSTREAM", "off", 1);
    setenv("VIGIL_STREAM", "S2", 1);
    setenv("VIGIL_CONSUMER", "c2", 1);
    setenv("VIGIL_FETCH_BATCH", "10", 1);
    setenv("VIGIL_REDIS", "", 1);                 /* empty: back to the memory store */
    setenv("VIGIL_REDIS_PREFIX", "p2", 1);
    setenv("VIGIL_DATA_DIR", "/var/lib/vigil", 1);
    setenv("VIGIL_SNAPSHOT_INTERVAL", "30s", 1);
    setenv("VIGIL_OUTBOX_FSYNC", "TRUE", 1);
    setenv("VIGIL_WEBHOOK_SECRET", "whsec_c2VjcmV0", 1);
    setenv("VIGIL_WEBHOOKS", "https://a.example.com/h, http://b.example.com:8080/h", 1);
    CU_ASSERT_EQUAL_FATAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);
    clear_env();
    vigil_server_config *c = &f.cfg;
    CU_ASSERT_STRING_EQUAL(c->rules, "/etc/vigil/rules");
    CU_ASSERT_STRING_EQUAL(c->listen, "127.0.0.1:0");
    CU_ASSERT_EQUAL(c->workers, 8);
    CU_ASSERT_EQUAL(c->partitions, 64);
    CU_ASSERT_EQUAL(c->queue_cap, 4096);
    CU_ASSERT_EQUAL(c->max_body, 1u << 20);
    CU_ASSERT_EQUAL(c->ev.decode.ntime_fields, 3);
    CU_ASSERT_STRING_EQUAL(c->ev.decode.time_fields[2], "t3");
    CU_ASSERT_STRING_EQUAL(c->ev.decode.id_fields[0], "eid");
    CU_ASSERT_EQUAL(c->ev.decode.time_format, VIGIL_TIME_MS);
    CU_ASSERT_EQUAL(c->allowed_lateness_ms, 60000);
    CU_ASSERT_EQUAL(c->max_out_of_orderness_ms, 0);
    CU_ASSERT_EQUAL(c->idle_timeout_ms, 45000);
    CU_ASSERT_STRING_EQUAL(c->nats_url, "nats://nats:4222");
    CU_ASSERT_STRING_EQUAL(c->subject, "ev.>");
    CU_ASSERT_EQUAL(c->jetstream, 0);
    CU_ASSERT_STRING_EQUAL(c->stream, "S2");
    CU_ASSERT_STRING_EQUAL(c->consumer, "c2");
    CU_ASSERT_EQUAL(c->fetch_batch, 10);
    CU_ASSERT_PTR_NULL(c->redis_url);
    CU_ASSERT_STRING_EQUAL(c->redis_prefix, "p2");
    CU_ASSERT_STRING_EQUAL(c->data_dir, "/var/lib/vigil");
    CU_ASSERT_EQUAL(c->snapshot_interval_ms, 30000);
    CU_ASSERT_EQUAL(c->outbox_fsync, 1);
    CU_ASSERT_STRING_EQUAL(c->webhook_secret, "whsec_c2VjcmV0");
    CU_ASSERT_EQUAL_FATAL(c->nendpoints, 2);   /* the file's three replaced */
    CU_ASSERT_STRING_EQUAL(c->endpoints[0].url, "https://a.example.com/h");
    CU_ASSERT_STRING_EQUAL(c->endpoints[1].url, "http://b.example.com:8080/h");
    CU_ASSERT_PTR_NULL(c->endpoints[0].name);
    CU_ASSERT_EQUAL(c->endpoints[0].nrules, 0);
    CU_ASSERT_EQUAL(c->ntokens, 2);            /* tokens have no variable */
    fx_free(&f);
}

static void test_env_empty_and_unset(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL_FATAL(fx_load(&f, full_config), VIGIL_OK);
    vigil_server_config before = f.cfg;
    clear_env();
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);   /* nothing set: nothing changes */
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    setenv("VIGIL_WORKERS", "", 1);      /* empty: ignored */
    setenv("VIGIL_RULES", "", 1);
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    setenv("VIGIL_NATS", "", 1);         /* empty: none */
    setenv("VIGIL_WEBHOOK_SECRET", "", 1);
    setenv("VIGIL_WEBHOOKS", "", 1);
    setenv("VIGIL_DATA_DIR", "", 1);
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);
    clear_env();
    CU_ASSERT_PTR_NULL(f.cfg.nats_url);
    CU_ASSERT_PTR_NULL(f.cfg.webhook_secret);
    CU_ASSERT_EQUAL(f.cfg.nendpoints, 0);
    CU_ASSERT_STRING_EQUAL(f.cfg.data_dir, "");
    CU_ASSERT_EQUAL(f.cfg.workers, 4);
    fx_free(&f);
}

/* One variable with a bad value: the message, and nothing applied (not even
 * the good variables read before it). */
static void env_error(const char *var, const char *value, const char *want) {
    fixture f;
    fx_init(&f);
    vigil_server_config before = f.cfg;
    clear_env();
    setenv("VIGIL_RULES", "/changed", 1);   /* read before every other variable */
    setenv(var, value, 1);
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_EPARSE);
    clear_env();
    if (!strstr(f.err.msg, want)) {
        fprintf(stderr, "\n  want: %s\n  got:  %s\n", want, f.err.msg);
        CU_FAIL("error message");
    }
    CU_ASSERT_STRING_EQUAL(f.err.file, "");
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    fx_free(&f);
}

static void test_env_errors(void) {
    env_error("VIGIL_WORKERS", "abc", "VIGIL_WORKERS=abc is not a whole number from 1 to 64; write VIGIL_WORKERS=4");
    env_error("VIGIL_WORKERS", "65", "VIGIL_WORKERS=65 is not a whole number from 1 to 64");
    env_error("VIGIL_QUEUE_CAP", "0", "VIGIL_QUEUE_CAP=0 is not a whole number from 1 to 16777216");
    env_error("VIGIL_MAX_BODY", "16MB", "VIGIL_MAX_BODY=16MB is not a size from 1KiB to 1GiB");
    env_error("VIGIL_IDLE_TIMEOUT", "30", "VIGIL_IDLE_TIMEOUT=30 is not a duration (a number and a unit: ms, s, m, "
                                          "h or d; or 0); write VIGIL_IDLE_TIMEOUT=30s");
    env_error("VIGIL_SNAPSHOT_INTERVAL", "0", "VIGIL_SNAPSHOT_INTERVAL=0 must be more than 0");
    env_error("VIGIL_JETSTREAM", "maybe", "VIGIL_JETSTREAM=maybe is not a boolean (1, 0, true, false, yes, no, on or off)");
    env_error("VIGIL_NATS", "http://x:4222", "VIGIL_NATS=http://x:4222 is not a NATS URL: it must start with nats:// or tls://");
    env_error("VIGIL_REDIS", "http://x", "VIGIL_REDIS=http://x is not a Redis URL");
    env_error("VIGIL_LISTEN", "8080", "VIGIL_LISTEN=8080 is not an address HOST:PORT");
    env_error("VIGIL_TIME_FORMAT", "iso", "VIGIL_TIME_FORMAT=iso is not a time format: auto, s, ms or rfc3339");
    env_error("VIGIL_TIME_FIELD", "a,,b", "VIGIL_TIME_FIELD=a,,b is not a comma-separated list of at most 8 field names");
    env_error("VIGIL_TIME_FIELD", "a,b,c,d,e,f,g,h,i", "is not a comma-separated list of at most 8 field names");
    env_error("VIGIL_STREAM", "my.stream", "VIGIL_STREAM=my.stream is not a JetStream name");
    env_error("VIGIL_WEBHOOKS", "https://ok.example.com,ftp://x", "has 'ftp://x', which is not an http:// or https:// URL");
    env_error("VIGIL_WEBHOOKS", "http://1,http://2,http://3,http://4,http://5,http://6,http://7,http://8,http://9,"
                                "http://10,http://11,http://12,http://13,http://14,http://15,http://16,http://17",
              "has more than 16 URLs (VIGIL_MAX_WEBHOOKS)");
    /* a secret is never echoed */
    env_error("VIGIL_WEBHOOK_SECRET", "hunter2", "VIGIL_WEBHOOK_SECRET=... is not a webhook secret");
    fixture f;
    fx_init(&f);
    setenv("VIGIL_WEBHOOK_SECRET", "hunter2", 1);
    CU_ASSERT_NOT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);
    clear_env();
    CU_ASSERT_PTR_NULL(strstr(f.err.msg, "hunter2"));
    fx_free(&f);
}

static void test_set_flags(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "queue_cap", "100", "--queue-cap", &f.err), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.queue_cap, 100);
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "idle_timeout", "0", "--idle-timeout", &f.err), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.idle_timeout_ms, 0);
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "allowed_lateness", "0", "--allowed-lateness", &f.err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "store.data_dir", "/d", "--data-dir", &f.err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.cfg.data_dir, "/d");
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "nats.jetstream.stream", "S", "--stream", &f.err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.cfg.stream, "S");
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "time_field", "x,y", "--time-field", &f.err), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.ev.decode.ntime_fields, 2);
    vigil_server_config before = f.cfg;
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "idle_timeout", "soon", "--idle-timeout", &f.err), VIGIL_EPARSE);
    CU_ASSERT_STRING_EQUAL(f.err.msg, "--idle-timeout soon is not a duration (a number and a unit: ms, s, m, h or d; "
                                      "or 0); write --idle-timeout 30s");
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "partitions", "0", "--partitions", &f.err), VIGIL_EPARSE);
    CU_ASSERT_STRING_EQUAL(f.err.msg, "--partitions 0 is not a whole number from 1 to 4096; write --partitions 16");
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "no_such", "1", "--x", &f.err), VIGIL_ENOTFOUND);
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    fx_free(&f);
}

/* ---- file errors ------------------------------------------------------------------------ */

static void test_unknown_keys(void) {
    expect_error("return { listne = '127.0.0.1:1' }", 0,
                 "unknown key 'listne' in the top-level table; did you mean 'listen'? The known keys are: rules, "
                 "listen, workers, partitions, queue_cap, max_body, time_field, id_field, time_format, "
                 "allowed_lateness, max_out_of_orderness, idle_timeout, nats, redis, store, webhook_secret, "
                 "webhooks, tokens");
    expect_error("return { colour = 'red' }", 0, "unknown key 'colour' in the top-level table; the known keys are: rules,");
    expect_error("return { nats = { subjet = 'a.b' } }", 0,
                 "unknown key 'subjet' in the nats table; did you mean 'subject'? The known keys are: url, subject, "
                 "jetstream");
    expect_error("return { nats = { jetstream = { stram = 'S' } } }", 0,
                 "unknown key 'stram' in the nats.jetstream table; did you mean 'stream'?");
    expect_error("return { store = { fsync = true } }", 0, "unknown key 'fsync' in the store table; did you mean "
                                                           "'outbox_fsync'?");
    expect_error("return { webhooks = { { url = 'http://a', timout = '1s' } } }", 0,
                 "unknown key 'timout' in the endpoint webhooks[1]; did you mean 'timeout'?");
    expect_error("return { tokens = { { token = 'abc', roles = 'admin' } } }", 0,
                 "unknown key 'roles' in the entry tokens[1]; did you mean 'role'?");
    expect_error("return { 'rules' }", 0, "the top-level table has an entry with key 1; write name = value pairs");
}

static void test_type_and_value_errors(void) {
    expect_error("return { workers = '4' }", 0,
                 "workers must be a whole number from 1 to 64, not a string; write workers = 4");
    expect_error("return { workers = 2.5 }", 0, "workers = 2.5 is not a whole number from 1 to 64; write workers = 4");
    expect_error("return { workers = 0 }", 0, "workers = 0 is not a whole number from 1 to 64");
    expect_error("return { rules = 5 }", 0, "rules must be a rules directory or file, not a whole number; write "
                                            "rules = \"rules\"");
    expect_error("return { rules = '' }", 0, "rules = \"\" is empty");
    expect_error("return { idle_timeout = '30 s' }", 0,
                 "idle_timeout = \"30 s\" is not a duration (a number and a unit: ms, s, m, h or d; or 0); write "
                 "idle_timeout = \"30s\"");
    expect_error("return { allowed_lateness = 10 }", 0,
                 "allowed_lateness = 10 is a bare number: a duration needs a unit (ms, s, m, h or d); write "
                 "allowed_lateness = \"10s\"");
    expect_error("return { store = { snapshot_interval = 0 } }", 0, "store.snapshot_interval = 0 must be more than 0");
    expect_error("return { webhooks = { { url = 'http://a', timeout = '-1s' } } }", 0,
                 "webhooks[1].timeout = \"-1s\" is not a duration above 0");
    expect_error("return { max_body = '16MB' }", 0, "max_body = \"16MB\" is not a size from 1KiB to 1GiB");
    expect_error("return { max_body = 100 }", 0, "max_body = 100 is not a size");
    expect_error("return { store = { outbox_fsync = 1 } }", 0,
                 "store.outbox_fsync must be true or false, not a whole number; write store.outbox_fsync = true");
    expect_error("return { time_field = {} }", 0, "time_field must be a field name or a list of at most 8 field names");
    expect_error("return { time_field = {'a', 1} }", 0, "time_field[2] must be a field name or a list");
    expect_error("return { id_field = {'a', 'b,c'} }", 0, "id_field[2] = \"b,c\" is not a name (1 to 255 characters, "
                                                          "no commas)");
    expect_error("return { time_format = 'iso' }", 0, "time_format = \"iso\" is not a time format: auto, s, ms or "
                                                      "rfc3339");
    expect_error("return { nats = 4222 }", 0, "nats must be a table or a URL string, not a whole number");
    expect_error("return { nats = { jetstream = 'yes' } }", 0, "nats.jetstream must be true, false or a table, not a "
                                                               "string");
    expect_error("return { nats = { jetstream = { fetch_batch = 0 } } }", 0,
                 "nats.jetstream.fetch_batch = 0 is not a whole number from 1 to 100000");
    expect_error("return { nats = { subject = 'a b' } }", 0, "nats.subject = \"a b\" is not a NATS subject");
    expect_error("return { redis = { prefix = 'a{b}' } }", 0, "redis.prefix = \"a{b}\" is not a key prefix");
    expect_error("return { store = 'dir' }", 0, "store must be a table, not a string");
    expect_error("return { listen = 'localhost' }", 0, "listen = \"localhost\" is not an address HOST:PORT");
    expect_error("return { listen = '127.0.0.1:70000' }", 0, "is not an address HOST:PORT (port 0 to 65535)");
    expect_error("return { rules = 'a\\0b' }", 0, "rules contains a NUL byte");
}

static void test_url_errors(void) {
    expect_error("return { nats = { url = 'http://127.0.0.1:4222' } }", 0,
                 "nats.url = \"http://127.0.0.1:4222\" is not a NATS URL: it must start with nats:// or tls:// and "
                 "name a host (several URLs are separated by commas); write nats.url = \"nats://127.0.0.1:4222\"");
    expect_error("return { nats = 'nats://' }", 0, "nats = \"nats://\" is not a NATS URL");
    expect_error("return { redis = 'http://127.0.0.1' }", 0,
                 "redis = \"http://127.0.0.1\" is not a Redis URL (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]); "
                 "write redis = \"redis://127.0.0.1:6379/0\"");
    expect_error("return { webhooks = { { url = 'ftp://a/b' } } }", 0,
                 "webhooks[1].url = \"ftp://a/b\" is not a webhook URL: it must start with http:// or https:// and "
                 "name a host; write webhooks[1].url = \"https://hooks.example.com/vigil\"");
    expect_error("return { webhooks = { 'https://ok', 'example.com/hook' } }", 0,
                 "webhooks[2] = \"example.com/hook\" is not a webhook URL");
    expect_error("return { webhooks = { { name = 'x' } } }", 0,
                 "webhooks[1] has no url; write url = \"https://hooks.example.com/vigil\" in it");
}

static void test_webhook_errors(void) {
    char src[2048];
    size_t off = (size_t)snprintf(src, sizeof src, "return { webhooks = {");
    for (int i = 0; i < VIGIL_MAX_WEBHOOKS + 1; i++)
        off += (size_t)snprintf(src + off, sizeof src - off, " 'http://h%d.example.com/',", i);
    snprintf(src + off, sizeof src - off, " } }");
    expect_error(src, 0, "webhooks has 17 endpoints; at most 16 are allowed (VIGIL_MAX_WEBHOOKS): remove 1");
    expect_error("return { webhooks = {\n"
                 "  { name = 'ops', url = 'http://a' },\n"
                 "  { name = 'sec', url = 'http://b' },\n"
                 "  { name = 'ops', url = 'http://c' } } }",
                 0,
                 "webhooks[3].name = \"ops\" is already the name of webhooks[1]; endpoint names must be unique: "
                 "rename one, e.g. name = \"ops-2\"");
    expect_error("return { webhooks = { { name = 'o p s', url = 'http://a' } } }", 0,
                 "webhooks[1].name = \"o p s\" is not an endpoint name (1 to 64 letters, digits, '-' and '_')");
    expect_error("return { webhooks = { { url = 'http://a', min_severity = 'urgent' } } }", 0,
                 "webhooks[1].min_severity = \"urgent\" is not a severity: low, medium, high or critical; write "
                 "webhooks[1].min_severity = \"high\"");
    expect_error("return { webhooks = { { url = 'http://a', concurrency = 0 } } }", 0,
                 "webhooks[1].concurrency = 0 is not a whole number from 1 to 1024");
    expect_error("return { webhooks = { { url = 'http://a', backoff = '2h', max_backoff = '1h' } } }", 0,
                 "webhooks[1]: backoff (7200000 ms) is longer than max_backoff (3600000 ms)");
    expect_error("return { webhooks = { { url = 'http://a', rules = { 'a', 'b c' } } } }", 0,
                 "webhooks[1].rules[2] = \"b c\" is not a rule name");
    expect_error("return { webhooks = { url = 'http://a' } }", 0,
                 "webhooks must be a list of endpoints, not a table with other keys; write webhooks = { { name = "
                 "\"ops\", url = \"https://hooks.example.com/vigil\" } }");
    expect_error("return { webhook_secret = 'hunter2' }", 0,
                 "webhook_secret = \"...\" is not a webhook secret: \"whsec_\" followed by base64");
    expect_error("return { webhooks = { { url = 'http://a', secret = 'whsec_!!' } } }", 0,
                 "webhooks[1].secret = \"...\" is not a webhook secret");
}

static void test_token_errors(void) {
    expect_error("return { tokens = { { token = 'abcdefgh', role = 'root' } } }", 0,
                 "tokens[1].role = \"root\" is not a role: ingest, viewer, analyst or admin; write tokens[1].role = "
                 "\"viewer\"");
    expect_error("return { tokens = { { token = 'abcdefgh' } } }", 0, "tokens[1] has no role; write role = \"viewer\"");
    expect_error("return { tokens = { { role = 'admin' } } }", 0, "tokens[1] has no token");
    expect_error("return { tokens = { { token = 'same-token', role = 'admin' }, { token = 'same-token', role = "
                 "'viewer' } } }",
                 0, "tokens[2] has the same token as tokens[1]; every token must be different");
    expect_error("return { tokens = { { token = 'has space', role = 'admin' } } }", 0,
                 "tokens[1].token = \"...\" is not an API token");
    char src[2048];
    size_t off = (size_t)snprintf(src, sizeof src, "return { tokens = {");
    for (int i = 0; i < VIGIL_MAX_TOKENS + 1; i++)
        off += (size_t)snprintf(src + off, sizeof src - off, " { token = 't%d', role = 'viewer' },", i);
    snprintf(src + off, sizeof src - off, " } }");
    expect_error(src, 0, "tokens has 17 entries; at most 16 are allowed (VIGIL_MAX_TOKENS)");
    /* the metrics token is a secret: never echoed */
    expect_error("return { metrics_token = 'has space' }", 0, "metrics_token = \"...\" is not an API token");
}

/* limits.*: defaults, the file's table, the environment, and errors naming the key */
static void test_limits(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL(f.cfg.limits.max_fields, 1000);
    CU_ASSERT_EQUAL(f.cfg.limits.max_depth, 32);
    CU_ASSERT_EQUAL(f.cfg.limits.max_key_bytes, 1024);
    CU_ASSERT_EQUAL(f.cfg.limits.max_lines, 100000);
    CU_ASSERT_EQUAL(f.cfg.limits.max_rules, 1000);
    CU_ASSERT_EQUAL(f.cfg.limits.max_sse_clients, 64);
    CU_ASSERT_EQUAL(f.cfg.limits.max_conns_per_ip, 64);
    CU_ASSERT_EQUAL(f.cfg.limits.request_timeout_ms, 30000);
    CU_ASSERT_EQUAL(f.cfg.limits.max_header_bytes, 32u << 10);
    CU_ASSERT_PTR_NULL(f.cfg.tokens_file);
    CU_ASSERT_PTR_NULL(f.cfg.metrics_token);
    CU_ASSERT_EQUAL(fx_load(&f, "return { limits = { max_fields = 20, max_depth = 4, request_timeout = '3s',\n"
                                "  max_header_bytes = '8KiB', max_lines = 5 }, tokens_file = '/etc/vigil/tokens',\n"
                                "  metrics_token = 'prom-scrape-token' }"),
                    VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.limits.max_fields, 20);
    CU_ASSERT_EQUAL(f.cfg.limits.max_depth, 4);
    CU_ASSERT_EQUAL(f.cfg.limits.request_timeout_ms, 3000);
    CU_ASSERT_EQUAL(f.cfg.limits.max_header_bytes, 8192);
    CU_ASSERT_EQUAL(f.cfg.limits.max_lines, 5);
    CU_ASSERT_EQUAL(f.cfg.limits.max_sse_clients, 64);   /* absent: kept */
    CU_ASSERT_STRING_EQUAL(f.cfg.tokens_file, "/etc/vigil/tokens");
    CU_ASSERT_STRING_EQUAL(f.cfg.metrics_token, "prom-scrape-token");
    setenv("VIGIL_MAX_SSE_CLIENTS", "3", 1);
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.limits.max_sse_clients, 3);
    setenv("VIGIL_MAX_SSE_CLIENTS", "0", 1);
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_EPARSE);
    CU_ASSERT(strstr(f.err.msg, "VIGIL_MAX_SSE_CLIENTS") != NULL);
    CU_ASSERT_EQUAL(f.cfg.limits.max_sse_clients, 3);   /* untouched */
    clear_env();
    fx_free(&f);
    expect_error("return { limits = 5 }", 0, "limits must be a table");
    expect_error("return { limits = { max_feilds = 5 } }", 0, "max_feilds");
    expect_error("return { limits = { max_depth = 0 } }", 0, "limits.max_depth = 0 is not a whole number from 1 to 1000");
    expect_error("return { limits = { request_timeout = '10ms' } }", 0, "limits.request_timeout");
}

static void test_lua_errors(void) {
    expect_error("return {\n  rules = 'rules'\n  listen = '127.0.0.1:1',\n}\n", 3, "syntax error: '}' expected (to close "
                                                                                   "'{' at line 1) near 'listen'");
    expect_error("local x = nil\nreturn { rules = x.y }\n", 2,
                 "error while running the file: attempt to index a nil value (local 'x')");
    expect_error("\n\nerror('stop here')\n", 3, "error while running the file: stop here");
    expect_error("error({})", 0, "error() was called with a table, not a message");
    expect_error("return 5", 0, "the file returns a whole number; it must return one table: return { rules = \"rules\", … }");
    expect_error("return {}, {}", 0, "the file returns several values, the first a table; it must return one table");
    expect_error("local t = { rules = 'r' }\n", 0, "the file returns nothing; it must end with return { … }");
    expect_error("\x1bLua\x54\x00", 0, "the file is a precompiled Lua chunk; a config file must be Lua source text");
    /* a missing file */
    fixture f;
    fx_init(&f);
    vigil_server_config before = f.cfg;
    CU_ASSERT_EQUAL(vigil_config_load_file("/nonexistent/vigil.conf.lua", &f.cfg, f.o, &f.err), VIGIL_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(f.err.file, "/nonexistent/vigil.conf.lua");
    CU_ASSERT_STRING_EQUAL(f.err.msg, "cannot open the config file: No such file or directory; give an existing file "
                                      "to --config (or VIGIL_CONFIG)");
    CU_ASSERT_EQUAL(vigil_config_load_file("/tmp", &f.cfg, f.o, &f.err), VIGIL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.err.msg, "not a regular file"));
    CU_ASSERT(memcmp(&before, &f.cfg, sizeof before) == 0);
    char buf[600];
    vigil_error_format(&f.err, buf, sizeof buf);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "/tmp: the config path is not a regular file"));
    fx_free(&f);
}

/* The error comes after good keys were read and strings allocated: none of them lands. */
static void test_nothing_half_applied(void) {
    expect_error("return { rules = 'other', workers = 9, time_field = {'x', 'y', 'z'}, id_field = 'k',\n"
                 "  nats = { url = 'nats://other:1', jetstream = { stream = 'S' } },\n"
                 "  webhooks = { { name = 'a', url = 'http://a' } }, tokens = { { token = 'tttttttt', role = "
                 "'admin' } },\n"
                 "  store = { data_dir = '/x', outbox_fsync = false, snapshot_interval = 'never' } }",
                 0, "store.snapshot_interval = \"never\" is not a duration");
}

static void test_sandbox(void) {
    expect_error("local f = io.open('/etc/passwd')\nreturn {}", 1,
                 "error while running the file: 'io' is not available in a config file (no io, require or load; os "
                 "has only getenv)");
    expect_error("\nos.execute('touch /tmp/vigil-pwned')\nreturn {}", 2,
                 "error while running the file: os.execute is not available in a config file (only os.getenv is)");
    CU_ASSERT_EQUAL(access("/tmp/vigil-pwned", F_OK), -1);
    expect_error("os.exit(1)", 1, "os.exit is not available");
    expect_error("require('socket')", 1, "'require' is not available in a config file");
    expect_error("load('return 1')()", 1, "'load' is not available in a config file");
    expect_error("dofile('/etc/passwd')", 1, "'dofile' is not available in a config file");
    expect_error("pcall(error, 'x')", 1, "'pcall' is not available in a config file");
    expect_error("return { rules = string.dump(function() end) }", 1, "attempt to call a nil value (field 'dump')");
    expect_error("return { rules = lisen }", 1, "undefined global 'lisen'");
    /* the instruction budget stops it (the 2 s wall clock first when run under valgrind) */
    expect_error("local n = 0\nwhile true do\n  n = n + 1\nend\nreturn {}", -1, "(an endless loop?)");
    expect_error("local t = {}\nfor i = 1, 1e9 do t[i] = ('x'):rep(100000) .. i end\nreturn {}", -1,
                 "the file needs more than 16 MiB of memory");
    expect_error("return { rules = string.rep('x', 1 << 30) }", -1, "the file needs more than 16 MiB of memory");
    /* what is there works: string, table, math, os.getenv */
    fixture f;
    fx_init(&f);
    setenv("VIGIL_TEST_WORKERS", "6", 1);
    CU_ASSERT_EQUAL(fx_load(&f, "local w = tonumber(os.getenv('VIGIL_TEST_WORKERS') or '2')\n"
                                "local parts = {}\nfor i = 1, 3 do parts[#parts + 1] = 'f' .. i end\n"
                                "return { workers = math.max(w, 1), rules = ('RULES'):lower(),\n"
                                "  time_field = parts, id_field = table.concat({'a', 'b'}, ','),\n"
                                "  listen = string.format('%s:%d', '127.0.0.1', 8081),\n"
                                "  data = nil, nats = os.getenv('VIGIL_TEST_UNSET') }"),
                    VIGIL_OK);
    unsetenv("VIGIL_TEST_WORKERS");
    CU_ASSERT_EQUAL(f.cfg.workers, 6);
    CU_ASSERT_STRING_EQUAL(f.cfg.rules, "rules");
    CU_ASSERT_EQUAL(f.cfg.ev.decode.ntime_fields, 3);
    CU_ASSERT_EQUAL(f.cfg.ev.decode.nid_fields, 2);
    CU_ASSERT_STRING_EQUAL(f.cfg.listen, "127.0.0.1:8081");
    CU_ASSERT_PTR_NULL(f.cfg.nats_url);
    fx_free(&f);
}

/* deploy/vigil.conf.lua is documentation: it must load, and mean what it says. */
static void test_example_file(void) {
    fixture f;
    fx_init(&f);
    clear_env();
    CU_ASSERT_EQUAL(vigil_config_load_file(VIGIL_SOURCE_DIR "/deploy/vigil.conf.lua", &f.cfg, f.o, &f.err), VIGIL_OK);
    if (f.err.msg[0]) fprintf(stderr, "\n  %s:%d: %s\n", f.err.file, f.err.line, f.err.msg);
    CU_ASSERT_STRING_EQUAL(f.cfg.rules, "rules");
    CU_ASSERT_STRING_EQUAL(f.cfg.listen, "127.0.0.1:8080");
    CU_ASSERT_EQUAL(f.cfg.workers, 2);
    CU_ASSERT_EQUAL(f.cfg.max_body, 16u << 20);
    CU_ASSERT_EQUAL(f.cfg.idle_timeout_ms, 30000);
    fx_free(&f);
}

/* Transport security (issue 13): HTTPS files, NATS credentials and TLS,
 * Redis AUTH — read from the file, over it from the variables, and a bad
 * password is never echoed. */
static void test_transport_keys(void) {
    fixture f;
    fx_init(&f);
    CU_ASSERT_EQUAL(fx_load(&f, "return { tls_cert = '/c.pem', tls_key = '/k.pem',\n"
                                "  nats = { url = 'tls://n:4222', user = 'u', password = 'p1', creds = '/x.creds',\n"
                                "           tls = { ca = '/ca.pem', cert = '/cc.pem', key = '/ck.pem' } },\n"
                                "  redis = { url = 'redis://r:6379/0', user = 'ru', password = 'rp' } }"),
                    VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.cfg.tls_cert, "/c.pem");
    CU_ASSERT_STRING_EQUAL(f.cfg.tls_key, "/k.pem");
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_user, "u");
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_password, "p1");
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_creds, "/x.creds");
    CU_ASSERT_EQUAL(f.cfg.nats_tls, 1);   /* a tls table turns TLS on */
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_tls_ca, "/ca.pem");
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_tls_cert, "/cc.pem");
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_tls_key, "/ck.pem");
    CU_ASSERT_STRING_EQUAL(f.cfg.redis_user, "ru");
    CU_ASSERT_STRING_EQUAL(f.cfg.redis_password, "rp");
    setenv("VIGIL_NATS_PASSWORD", "p2", 1);
    setenv("VIGIL_REDIS_PASSWORD", "rp2", 1);
    setenv("VIGIL_TLS_CERT", "/c2.pem", 1);
    setenv("VIGIL_NATS_TLS", "0", 1);
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.cfg.nats_password, "p2");
    CU_ASSERT_STRING_EQUAL(f.cfg.redis_password, "rp2");
    CU_ASSERT_STRING_EQUAL(f.cfg.tls_cert, "/c2.pem");
    CU_ASSERT_EQUAL(f.cfg.nats_tls, 0);
    setenv("VIGIL_NATS_PASSWORD", "has space-s3cr3t", 1);   /* refused, and not echoed */
    CU_ASSERT_EQUAL(vigil_config_apply_env(&f.cfg, f.o, &f.err), VIGIL_EPARSE);
    CU_ASSERT(strstr(f.err.msg, "VIGIL_NATS_PASSWORD") && !strstr(f.err.msg, "s3cr3t"));
    unsetenv("VIGIL_NATS_PASSWORD");
    unsetenv("VIGIL_REDIS_PASSWORD");
    unsetenv("VIGIL_TLS_CERT");
    unsetenv("VIGIL_NATS_TLS");
    CU_ASSERT_EQUAL(vigil_config_set(&f.cfg, f.o, "tls_key", "/k2.pem", "--tls-key", &f.err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(f.cfg.tls_key, "/k2.pem");
    CU_ASSERT_EQUAL(fx_load(&f, "return { nats = { tls = true } }"), VIGIL_OK);
    CU_ASSERT_EQUAL(f.cfg.nats_tls, 1);
    fx_free(&f);
    expect_error("return { nats = { tls = 3 } }", -1, "nats.tls must be true, false or a table");
    expect_error("return { nats = { tls = { ca = '/a', cas = '/b' } } }", -1, "did you mean 'ca'");
    expect_error("return { redis = { password = 'x y-s3cr3t' } }", -1, "redis.password = \"...\"");
    expect_error("return { nats = { token = 'x\\ny' } }", -1, "nats.token = \"...\"");
    /* a bad URL is shown without its user:password */
    expect_error("return { redis = 'redis://u:s3cr3t-pw@h:99999/0' }", -1, "redis = \"redis://***@h:99999/0\"");
    expect_error("return { nats = 'nats://u:s3cr3t-pw@h:4222,http://x' }", -1, "nats://***@h:4222,http://x");
}

int main(void) {
    clear_env();
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "every key of the file", test_every_key);
    CU_add_test(s, "shorthands", test_shorthands);
    CU_add_test(s, "environment overrides the file", test_env_overrides_file);
    CU_add_test(s, "empty and unset variables", test_env_empty_and_unset);
    CU_add_test(s, "environment errors", test_env_errors);
    CU_add_test(s, "flags through vigil_config_set", test_set_flags);
    CU_add_test(s, "unknown keys", test_unknown_keys);
    CU_add_test(s, "types and values", test_type_and_value_errors);
    CU_add_test(s, "URLs", test_url_errors);
    CU_add_test(s, "webhook endpoints", test_webhook_errors);
    CU_add_test(s, "webhook endpoints: max_attempts", test_webhook_max_attempts);
    CU_add_test(s, "tokens", test_token_errors);
    CU_add_test(s, "limits, tokens_file, metrics_token", test_limits);
    CU_add_test(s, "Lua errors and unreadable files", test_lua_errors);
    CU_add_test(s, "nothing half applied", test_nothing_half_applied);
    CU_add_test(s, "sandbox", test_sandbox);
    CU_add_test(s, "deploy/vigil.conf.lua", test_example_file);
    CU_add_test(s, "transport: TLS files, NATS and Redis credentials", test_transport_keys);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
