/* config.h — the settings of `vigil serve`: defaults, the Lua config file and
 * the VIGIL_* environment variables (DESIGN.md §5).
 *
 * `vigil serve` builds its vigil_server_config in four layers, each one
 * overriding the one before:
 *
 *     vigil_config_defaults      every key has a default, so `vigil serve` alone runs
 *     vigil_config_load_file     --config F, else $VIGIL_CONFIG
 *     vigil_config_apply_env     VIGIL_RULES, VIGIL_LISTEN, … (one per scalar key)
 *     command-line flags         vigil_config_set with the flag's name as source
 *
 * The file is Lua 5.4 source that returns one table (see deploy/vigil.conf.lua
 * for every key and docs/operations.md for the table of keys, defaults and
 * variables):
 *
 *     return {
 *       rules = "rules", listen = "127.0.0.1:8080",
 *       tls_cert = "/etc/vigil/tls/cert.pem", tls_key = "/etc/vigil/tls/key.pem",   -- HTTPS
 *       workers = 2, partitions = 16, queue_cap = 65536, max_body = "16MiB",
 *       time_field = "ts",                 -- or a list: {"tx_datetime", "report_datetime"}
 *       id_field = "id", time_format = "auto",
 *       allowed_lateness = "0s", max_out_of_orderness = "0s", idle_timeout = "30s",
 *       nats = { url = "nats://127.0.0.1:4222", subject = "vigil.events.>",
 *                jetstream = { stream = "VIGIL_EVENTS", consumer = "vigil", fetch_batch = 1000 },
 *                user = "vigil", password = os.getenv("NATS_PASSWORD"),   -- or token = …, or creds = "…"
 *                tls = { ca = "/etc/vigil/nats-ca.pem", cert = "…", key = "…" } },   -- or tls = true
 *       redis = { url = "redis://127.0.0.1:6379/0", prefix = "vigil",
 *                 user = "vigil", password = os.getenv("REDIS_PASSWORD") },   -- AUTH
 *       store = { data_dir = "./vigil-data", snapshot_interval = "10s", outbox_fsync = true },
 *       webhook_secret = "whsec_…",
 *       webhooks = { { name = "ops", url = "https://…", secret = "whsec_…", rules = {"card_testing"},
 *                      min_severity = "high", concurrency = 16, timeout = "5s", backoff = "1s",
 *                      max_backoff = "1h", horizon = "24h" } },
 *       tokens = { { token = "…", role = "analyst" } },
 *     }
 *
 * Shorthands: `nats = "nats://…"` and `redis = "redis://…"` stand for
 * `{ url = … }`; `jetstream = true` turns JetStream on with the defaults (a
 * jetstream table turns it on too; so does a `tls` table for NATS TLS); a
 * webhooks entry may be a bare URL string; time_field, id_field and an endpoint's rules take one string or a
 * list of strings. Durations are strings as in the rule language ("500ms",
 * "10s", "5m", "1h", "1d") or 0; sizes are a number of bytes or a string with
 * B, KiB, MiB or GiB ("512KiB", "16MiB").
 *
 * The file runs in a restricted Lua state: base functions without load,
 * loadfile, dofile, require, collectgarbage, print, pcall and xpcall; the
 * string (without dump and the pattern functions), table, math and utf8
 * libraries; `os` holds only os.getenv; no io, debug or package. Text
 * chunks only, a 16 MiB memory cap, a budget of 10 million VM instructions
 * and 2 s of wall clock. Reading an undefined global is an error.
 *
 * Errors: every function below leaves cfg exactly as it was when it fails
 * (nothing is half applied) and fills err: for the file, err->file is the
 * path and err->line the line when Lua knows it (syntax and runtime errors);
 * err->msg says what is wrong and what to write instead, naming the key
 * ("webhooks[2].timeout"), the variable (VIGIL_WORKERS) or the flag
 * (--workers).
 *
 * Ownership: every string the functions put in cfg is a copy held by a
 * vigil_config_owner, which must outlive cfg (for `vigil serve`: the
 * server's life). The event options' field lists are the exception: they are
 * owned by cfg->ev exactly as the --time-field/--id-field flags leave them
 * (free with vigil_event_opts_free). */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include "server.h"

typedef struct vigil_config_owner vigil_config_owner;

/* A new, empty owner, or NULL when out of memory. */
vigil_config_owner *vigil_config_owner_create(void);
/* Free every string the owner holds. Accepts NULL. Configs filled through it
 * must not be used afterwards. */
void vigil_config_owner_destroy(vigil_config_owner *o);

/* Zero cfg and set every documented default explicitly: rules "rules",
 * listen "127.0.0.1:8080", subject "vigil.events.>", redis_prefix "vigil",
 * workers 2, partitions 16, queue_cap 65536, max_body 16 MiB, idle timeout
 * 30 s, stream "VIGIL_EVENTS", consumer "vigil", fetch_batch 1000, data_dir
 * "./vigil-data", snapshot interval 10 s, outbox_fsync 1 (the one default
 * that is not zero and so cannot be left to the server), event options
 * ts/id/auto; NATS, Redis, JetStream, webhooks, tokens and the secret off.
 * All strings are static. Call it once, first: it does not free cfg->ev. */
void vigil_config_defaults(vigil_server_config *cfg);

/* Read the Lua config file at path into cfg (keys absent from the file keep
 * their value in cfg). The file's webhooks replace cfg->endpoints and its
 * tokens replace cfg->tokens when the file has those keys. Errors:
 * VIGIL_ENOTFOUND/VIGIL_EIO (cannot read), VIGIL_ETOOBIG (over 1 MiB),
 * VIGIL_EPARSE (Lua error, wrong key, type or value), VIGIL_ENOMEM. */
vigil_status vigil_config_load_file(const char *path, vigil_server_config *cfg,
                                    vigil_config_owner *owner, vigil_error *err);

/* Apply every VIGIL_* variable that is set (see vigil_config_set for the
 * values; the variable names are in docs/operations.md). An empty variable
 * is ignored, except for the ones whose empty value means "none":
 * VIGIL_NATS, VIGIL_REDIS, VIGIL_WEBHOOK_SECRET, VIGIL_WEBHOOKS and
 * VIGIL_DATA_DIR. VIGIL_WEBHOOKS (comma-separated http(s) URLs) replaces
 * cfg->endpoints with endpoints that have the default options. VIGIL_CONFIG
 * is not read here (the caller picks the file). Errors: VIGIL_EPARSE naming
 * the variable, VIGIL_ENOMEM. */
vigil_status vigil_config_apply_env(vigil_server_config *cfg, vigil_config_owner *owner, vigil_error *err);

/* Set one scalar key from text, as a variable or a flag gives it. key is the
 * key's path in the file ("workers", "nats.url", "nats.jetstream",
 * "nats.jetstream.stream", "store.outbox_fsync", "webhooks", …); source
 * names where the value came from in messages: a flag ("--workers", shown as
 * `--workers 4`) or a variable ("VIGIL_WORKERS", shown as `VIGIL_WORKERS=4`).
 * Values: numbers in decimal; sizes "16MiB" or bytes; durations "10s" or 0;
 * booleans 1/0, true/false, yes/no, on/off; field lists comma-separated.
 * Errors: VIGIL_ENOTFOUND (no such key: a bug in the caller), VIGIL_EPARSE
 * (bad value), VIGIL_ENOMEM; cfg untouched on error. */
vigil_status vigil_config_set(vigil_server_config *cfg, vigil_config_owner *owner, const char *key,
                              const char *value, const char *source, vigil_error *err);

#endif
