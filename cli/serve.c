/* serve.c — the `vigil serve` command line: options (flags over VIGIL_*
 * environment variables over the config file over defaults; server/config.c
 * reads the file and the variables and parses the flags' values). The
 * server's life, from start to a clean stop, is server/serve.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "server/config.h"
#include "server/serve.h"
static void serve_usage(void) {
    fprintf(stderr,
            "usage: vigil serve [--config F] [--rules DIR] [--watch] [--listen ADDR] [--nats URL] [--redis URL]\n"
            "                   [--webhook URL …] [--time-field N[,N2…]] [--id-field N[,N2…]]\n"
            "                   [--time-format F] [--workers N] [--partitions N] [--queue-cap N] [--max-body SIZE]\n"
            "                   [--allowed-lateness D] [--max-out-of-orderness D]   (?wait answers only events matched at once)\n"
            "                   [--idle-timeout D]   (default 30s; 0 = the watermark moves only with events)\n"
            "                   [--subject S] [--jetstream] [--stream S] [--consumer C] [--fetch-batch N]\n"
            "                   [--redis-prefix P] [--data-dir D] [--snapshot-interval D] [--tokens-file F]\n"
            "                   [--tls-cert PEM --tls-key PEM]   (HTTPS on the API)\n"
            "config: a Lua file returning a table (--config F, else VIGIL_CONFIG); see deploy/vigil.conf.lua.\n"
            "precedence: flags over VIGIL_* variables over the config file over defaults (docs/operations.md).\n"
            "environment: VIGIL_CONFIG, VIGIL_RULES, VIGIL_LISTEN, VIGIL_WORKERS, VIGIL_PARTITIONS, VIGIL_QUEUE_CAP,\n"
            "  VIGIL_MAX_BODY, VIGIL_TIME_FIELD, VIGIL_ID_FIELD, VIGIL_TIME_FORMAT, VIGIL_ALLOWED_LATENESS,\n"
            "  VIGIL_MAX_OUT_OF_ORDERNESS, VIGIL_IDLE_TIMEOUT, VIGIL_NATS, VIGIL_SUBJECT, VIGIL_JETSTREAM, VIGIL_STREAM,\n"
            "  VIGIL_CONSUMER, VIGIL_FETCH_BATCH, VIGIL_REDIS, VIGIL_REDIS_PREFIX, VIGIL_DATA_DIR,\n"
            "  VIGIL_SNAPSHOT_INTERVAL, VIGIL_OUTBOX_FSYNC, VIGIL_WEBHOOK_SECRET (whsec_…), VIGIL_WEBHOOKS (URL,URL…),\n"
            "  VIGIL_TLS_CERT, VIGIL_TLS_KEY, VIGIL_NATS_USER, VIGIL_NATS_PASSWORD, VIGIL_NATS_TOKEN, VIGIL_NATS_CREDS,\n"
            "  VIGIL_NATS_TLS, VIGIL_NATS_TLS_CA, VIGIL_NATS_TLS_CERT, VIGIL_NATS_TLS_KEY, VIGIL_REDIS_USER,\n"
            "  VIGIL_REDIS_PASSWORD, VIGIL_TOKENS_FILE, VIGIL_METRICS_TOKEN, VIGIL_MAX_FIELDS, VIGIL_MAX_DEPTH,\n"
            "  VIGIL_MAX_KEY_BYTES, VIGIL_MAX_LINES, VIGIL_MAX_RULES, VIGIL_MAX_SSE_CLIENTS, VIGIL_MAX_CONNS_PER_IP,\n"
            "  VIGIL_REQUEST_TIMEOUT, VIGIL_MAX_HEADER_BYTES, VIGIL_CLUSTER_INSTANCE, VIGIL_CLUSTER_LEASE,\n"
            "  VIGIL_CLUSTER_HEARTBEAT, VIGIL_CLUSTER_STREAM, VIGIL_CLUSTER_SUBJECT, VIGIL_CLUSTER_KV_PREFIX\n"
            "  (secrets never as flags: a process's arguments are visible\n"
            "  to every user)\n");
}

/* Flags that set one scalar key of the config (vigil_config_set parses them,
 * so a flag means what the same key means in the file). */
static const struct {
    const char *flag, *key;
} flag_keys[] = {
    {"--rules", "rules"},
    {"--listen", "listen"},
    {"--nats", "nats.url"},
    {"--redis", "redis.url"},
    {"--subject", "nats.subject"},
    {"--workers", "workers"},
    {"--partitions", "partitions"},
    {"--queue-cap", "queue_cap"},
    {"--max-body", "max_body"},
    {"--allowed-lateness", "allowed_lateness"},
    {"--max-out-of-orderness", "max_out_of_orderness"},
    {"--idle-timeout", "idle_timeout"},
    {"--stream", "nats.jetstream.stream"},
    {"--consumer", "nats.jetstream.consumer"},
    {"--fetch-batch", "nats.jetstream.fetch_batch"},
    {"--redis-prefix", "redis.prefix"},
    {"--data-dir", "store.data_dir"},
    {"--snapshot-interval", "store.snapshot_interval"},
    {"--tokens-file", "tokens_file"},
    {"--log-format", "log_format"},
    {"--tls-cert", "tls_cert"},
    {"--tls-key", "tls_key"},
};

/* First pass over argv: --help and the config file's path (flags are applied
 * after the file and the environment, so the file must be known first).
 * Returns 0 to go on, 1 when --help was given, -1 on a missing value. */
static int prescan(int argc, char **argv, const char **config) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return 1;
        if (strcmp(a, "--jetstream") == 0 || strcmp(a, "--watch") == 0) continue;
        if (strcmp(a, "--config") == 0) {
            if (!vigil_cli_value(argc, argv, &i)) return -1;
            *config = argv[i];
        } else if (a[0] == '-' && i + 1 < argc) {
            i++;   /* every other option takes a value; unknown ones are reported later */
        }
    }
    return 0;
}

/* Flags over what the file and the environment set. Returns 0, or 2 (message printed). */
static int apply_flags(int argc, char **argv, vigil_server_config *cfg, vigil_config_owner *own) {
    for (int i = 1; i < argc; i++) {
        int r = vigil_cli_event_opt(argc, argv, &i, &cfg->ev);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--watch") == 0) {
            cfg->watch = 1;
            continue;
        }
        if (strcmp(a, "--jetstream") == 0) {
            cfg->jetstream = 1;
            continue;
        }
        const char *key = NULL;
        for (size_t k = 0; k < sizeof flag_keys / sizeof flag_keys[0]; k++)
            if (strcmp(a, flag_keys[k].flag) == 0) key = flag_keys[k].key;
        if (!key && strcmp(a, "--webhook") != 0 && strcmp(a, "--config") != 0) {
            fprintf(stderr, "vigil serve: unknown option '%s'\n", a);
            serve_usage();
            return 2;
        }
        if (!(v = vigil_cli_value(argc, argv, &i))) return 2;
        if (strcmp(a, "--config") == 0) continue;   /* read before the environment */
        if (strcmp(a, "--webhook") == 0) {
            if (cfg->nwebhooks == VIGIL_MAX_WEBHOOKS) {
                fprintf(stderr, "vigil serve: at most %d webhooks\n", VIGIL_MAX_WEBHOOKS);
                return 2;
            }
            cfg->webhooks[cfg->nwebhooks++] = v;
            continue;
        }
        vigil_error err;
        if (vigil_config_set(cfg, own, key, v, a, &err) != VIGIL_OK) {
            fprintf(stderr, "vigil serve: %s\n", err.msg);
            return 2;
        }
    }
    return 0;
}

int vigil_cmd_serve(int argc, char **argv) {
    vigil_server_config cfg;
    vigil_config_defaults(&cfg);
    const char *config = NULL;
    int rc = prescan(argc, argv, &config);
    if (rc != 0) {
        if (rc > 0) serve_usage();
        vigil_event_opts_free(&cfg.ev);
        return rc > 0 ? 0 : 2;
    }
    if (!config && getenv("VIGIL_CONFIG") && *getenv("VIGIL_CONFIG")) config = getenv("VIGIL_CONFIG");
    vigil_config_owner *own = vigil_config_owner_create();
    if (!own) {
        fprintf(stderr, "vigil serve: out of memory\n");
        vigil_event_opts_free(&cfg.ev);
        return 1;
    }
    vigil_error err;
    vigil_error_clear(&err);
    char buf[1024];
    if ((config && vigil_config_load_file(config, &cfg, own, &err) != VIGIL_OK) ||
        vigil_config_apply_env(&cfg, own, &err) != VIGIL_OK) {
        vigil_error_format(&err, buf, sizeof buf);
        fprintf(stderr, "vigil serve: %s\n", buf);
        rc = 2;
    } else {
        rc = apply_flags(argc, argv, &cfg, own);
    }
    if (rc != 0) {
        vigil_event_opts_free(&cfg.ev);
        vigil_config_owner_destroy(own);
        return rc;
    }
    rc = vigil_serve_run(&cfg, config);
    vigil_event_opts_free(&cfg.ev);
    vigil_config_owner_destroy(own);   /* after stop: the server used the config's strings */
    return rc;
}
