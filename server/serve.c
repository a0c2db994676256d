/* serve.c — the server's life as a process: signals, start, wait, a clean
 * stop (server/serve.h). SIGINT and SIGTERM drain and stop; SIGHUP reloads
 * the rules directory (per file; a file that does not compile leaves the
 * running rules in place). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "server/common/log.h"
#include "serve.h"
#include "server.h"

static volatile sig_atomic_t got_signal, got_hup;
static void on_signal(int sig) {
    if (sig == SIGHUP) got_hup++;
    else got_signal = sig;
}

int vigil_serve_run(const vigil_server_config *cfg, const char *config) {
    vigil_error err;
    char buf[1024];
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* block them until sigsuspend, so that none arrives between the check
     * and the wait; threads started below inherit the mask and never take them */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    vigil_log_set_json(cfg->log_json);
    vigil_server *s;
    vigil_error_clear(&err);
    vigil_status st = vigil_server_start(cfg, &s, &err);
    if (st != VIGIL_OK) {
        vigil_error_format(&err, buf, sizeof buf);
        if (vigil_log_json()) vigil_log(VIGIL_LOG_ERROR, "serve", "vigil serve: %s", buf[0] ? buf : vigil_status_str(st));
        else fprintf(stderr, "vigil serve: %s\n", buf[0] ? buf : vigil_status_str(st));
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    if (config) vigil_log(VIGIL_LOG_INFO, "serve", "config from %s", config);
    vigil_server_log_start(s);
    fflush(stderr);
    int hups = 0;
    while (!got_signal) {
        sigsuspend(&old);
        while (hups < got_hup) {
            hups++;
            vigil_log(VIGIL_LOG_INFO, "serve", "SIGHUP: reloading the rules directory");
            fflush(stderr);
            vigil_server_reload(s);
        }
    }
    vigil_log(VIGIL_LOG_INFO, "serve", "signal %d, draining and stopping", (int)got_signal);
    vigil_server_stop(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}
