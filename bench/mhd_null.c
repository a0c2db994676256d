/* mhd_null.c — the ceiling of HTTP ingest (issue 4, item 3): libmicrohttpd
 * with the daemon flags and options of vigil's API (api/http.c vhttp_start:
 * internal polling thread, epoll, suspend/resume allowed, a pool of 2
 * threads, 1000 connections, a completion callback) and a handler that
 * reads the body, drops it and answers 202 {"accepted":1}. Whatever vigil's
 * POST /v1/events does beyond this — copying the body, decoding, routing,
 * queueing, the JSON answer — is what the pair measures.
 *
 *   bench_mhd_null [--port N]      (0, the default: a free port)
 *
 * Prints "PORT <n>" once listening; SIGTERM/SIGINT stop it and print the
 * requests and body bytes it saw. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_ullong requests, body_bytes;
static char conn_marker;   /* *con_cls for a request in progress */

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    if (!*con_cls) {
        *con_cls = &conn_marker;
        return MHD_YES;
    }
    if (*upload_size) {
        atomic_fetch_add(&body_bytes, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&requests, 1);
    static const char body[] = "{\"accepted\":1}";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, 202, r);
    MHD_destroy_response(r);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    *con_cls = NULL;
}

int main(int argc, char **argv) {
    long port = 0;
    if (argc == 3 && strcmp(argv[1], "--port") == 0) port = strtol(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: bench_mhd_null [--port N]\n");
        return 2;
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_NOTIFY_COMPLETED, completed,
        NULL, MHD_OPTION_THREAD_POOL_SIZE, 2, MHD_OPTION_CONNECTION_LIMIT, 1000, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mhd_null: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", di ? (unsigned)di->port : (unsigned)port);
    fflush(stdout);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    MHD_stop_daemon(d);
    printf("RESULT requests %llu\nRESULT body_bytes %llu\n", (unsigned long long)atomic_load(&requests),
           (unsigned long long)atomic_load(&body_bytes));
    return 0;
}
