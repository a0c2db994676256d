/* serve.c — the `vigil serve` command: options (flags over VIGIL_*
 * environment variables over the config file over defaults), signals, and
 * the server's life from start to a clean stop. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server_int.h"
#include "vigil/rules.h"

/* ---- the command ---------------------------------------------------------------- */

static volatile sig_atomic_t got_signal;
static void on_signal(int sig) { got_signal = sig; }

static void serve_usage(void) {
    fprintf(stderr,
            "usage: vigil serve [--config F] [--rules DIR] [--listen ADDR] [--nats URL] [--redis URL]\n"
            "                   [--webhook URL …] [--time-field N[,N2…]] [--id-field N[,N2…]]\n"
            "                   [--time-format F] [--workers N] [--allowed-lateness D] [--subject S]\n"
            "                   [--max-out-of-orderness D]   (?wait answers only events matched at once)\n"
            "                   [--idle-timeout D]   (default 30s; 0 = the watermark moves only with events)\n"
            "environment: VIGIL_WEBHOOK_SECRET (whsec_…), VIGIL_RULES, VIGIL_LISTEN, VIGIL_NATS, VIGIL_REDIS\n");
}

int vigil_cmd_serve(int argc, char **argv) {
    vigil_server_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.idle_timeout_ms = 30000;
    vigil_cli_event_opts_init(&cfg.ev);
    cfg.rules = getenv("VIGIL_RULES");
    cfg.listen = getenv("VIGIL_LISTEN");
    cfg.nats_url = getenv("VIGIL_NATS");
    cfg.redis_url = getenv("VIGIL_REDIS");
    cfg.webhook_secret = getenv("VIGIL_WEBHOOK_SECRET");
    for (int i = 1; i < argc; i++) {
        int r = vigil_cli_event_opt(argc, argv, &i, &cfg.ev);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            serve_usage();
            return 0;
        }
        if (!(v = vigil_cli_value(argc, argv, &i))) return 2;
        if (strcmp(a, "--rules") == 0) cfg.rules = v;
        else if (strcmp(a, "--listen") == 0) cfg.listen = v;
        else if (strcmp(a, "--nats") == 0) cfg.nats_url = v;
        else if (strcmp(a, "--redis") == 0) cfg.redis_url = v;
        else if (strcmp(a, "--subject") == 0) cfg.subject = v;
        else if (strcmp(a, "--webhook") == 0) {
            if (cfg.nwebhooks == VIGIL_MAX_WEBHOOKS) {
                fprintf(stderr, "vigil serve: at most %d webhooks\n", VIGIL_MAX_WEBHOOKS);
                return 2;
            }
            cfg.webhooks[cfg.nwebhooks++] = v;
        } else if (strcmp(a, "--workers") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 64) {
                fprintf(stderr, "vigil serve: --workers '%s': expected 1..64\n", v);
                return 2;
            }
            cfg.workers = (int)n;
        } else if (strcmp(a, "--allowed-lateness") == 0) {
            if (vigil_duration_parse(v, &cfg.allowed_lateness_ms) != VIGIL_OK) {
                fprintf(stderr, "vigil serve: --allowed-lateness '%s': expected a duration like 10s\n", v);
                return 2;
            }
        } else if (strcmp(a, "--idle-timeout") == 0) {
            if (strcmp(v, "0") == 0) cfg.idle_timeout_ms = 0;
            else if (vigil_duration_parse(v, &cfg.idle_timeout_ms) != VIGIL_OK) {
                fprintf(stderr, "vigil serve: --idle-timeout '%s': expected a duration like 30s (0 = never)\n", v);
                return 2;
            }
        } else if (strcmp(a, "--max-out-of-orderness") == 0) {
            if (vigil_duration_parse(v, &cfg.max_out_of_orderness_ms) != VIGIL_OK) {
                fprintf(stderr, "vigil serve: --max-out-of-orderness '%s': expected a duration like 10s\n", v);
                return 2;
            }
        } else if (strcmp(a, "--config") == 0) {
            fprintf(stderr, "vigil serve: --config is not supported yet (planned: a Lua config file); use flags and VIGIL_* variables\n");
            return 2;
        } else {
            fprintf(stderr, "vigil serve: unknown option '%s'\n", a);
            serve_usage();
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* block them until sigsuspend, so that none arrives between the check
     * and the wait; threads started below inherit the mask and never take them */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    vigil_server *s;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_server_start(&cfg, &s, &err);
    if (st != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&err, buf, sizeof buf);
        fprintf(stderr, "vigil serve: %s\n", buf[0] ? buf : vigil_status_str(st));
        return 1;
    }
    fprintf(stderr, "vigil: %d rules from %s; store %s; NATS %s; %d webhook(s); %d workers\n",
            vigil_ruleset_rule_count(s->rs), s->cfg.rules, cfg.redis_url ? cfg.redis_url : "memory",
            cfg.nats_url ? cfg.nats_url : "off", cfg.nwebhooks, s->nworkers);
    fprintf(stderr, "vigil: listening on http://127.0.0.1:%d/ (dashboard at /)\n", s->port);
    fflush(stderr);
    while (!got_signal) sigsuspend(&old);
    fprintf(stderr, "vigil: signal %d, draining and stopping\n", (int)got_signal);
    vigil_server_stop(s);
    vigil_cli_event_opts_free(&cfg.ev);
    return 0;
}
