/* http_single.c — the load generator of the access-control overhead bench
 * (issue 13: "single-event POSTs per second with auth on vs off, and the
 * same with TLS"; run by bench/auth_overhead.sh). wrk is not on this
 * machine, so this is a small libcurl-multi client: --conns keep-alive
 * connections (a TLS handshake once per connection, as a real sender
 * does), each POSTing one JSON event at a time to --url for --secs seconds,
 * with `Authorization: Bearer --token` when given and the server's
 * certificate verified against --cacert for https://.
 *
 *   bench_http_single --url URL [--token T] [--cacert PEM] [--conns 8] [--secs 5]
 *                     [--count N] [--pid PID] [--keys 10000]
 *
 * --count N: stop after N requests instead of after --secs (for counting
 * the server's instructions per request under callgrind).
 *
 * Events are {"id":"<n>","k":"<n mod keys>","ts":<now ms>}, so the server
 * does its whole job per request (decode, route, match, commit). Prints one
 * line: RESULT requests=… secs=… rps=… errors=… and, with --pid (the
 * server's), cpu_us_per_req=… (its user + system CPU time over the run
 * divided by the requests answered 202 — the server's cost per request,
 * whatever the client's own speed). Exit 1 when no request succeeded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "benchutil.h"

#define MAX_CONNS 256

typedef struct conn {
    CURL *e;
    char body[160];
} conn;

static unsigned long long seq, count;   /* count: requests to send, 0: until --secs */
static long keys = 10000;

static size_t discard(char *d, size_t sz, size_t nm, void *ud) {
    (void)d;
    (void)ud;
    return sz * nm;
}

static void next_body(conn *c) {
    unsigned long long n = seq++;
    int len = snprintf(c->body, sizeof c->body, "{\"id\":\"b%llu\",\"k\":\"c%llu\",\"ts\":%lld}", n,
                       n % (unsigned long long)keys, bu_wall_us() / 1000);
    curl_easy_setopt(c->e, CURLOPT_POSTFIELDSIZE, (long)len);
}

/* utime + stime of pid in seconds, or -1. */
static double cpu_secs(long pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the command may hold spaces */
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": state(3) … utime is field 14, stime 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv) {
    const char *url = NULL, *token = NULL, *cacert = NULL;
    long conns = 8, pid = 0;
    double secs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--url") == 0) url = v;
        else if (strcmp(a, "--token") == 0) token = v;
        else if (strcmp(a, "--cacert") == 0) cacert = v;
        else if (strcmp(a, "--conns") == 0) conns = (long)bu_count(v);
        else if (strcmp(a, "--secs") == 0) secs = strtod(v, NULL);
        else if (strcmp(a, "--pid") == 0) pid = (long)bu_count(v);
        else if (strcmp(a, "--keys") == 0) keys = (long)bu_count(v);
        else if (strcmp(a, "--count") == 0) count = (unsigned long long)bu_count(v);
        else {
            fprintf(stderr, "http_single: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (!url || conns < 1 || conns > MAX_CONNS || secs <= 0 || keys < 1) {
        fprintf(stderr, "usage: bench_http_single --url URL [--token T] [--cacert PEM] [--conns N] [--secs S] "
                        "[--pid PID] [--keys K]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = curl_multi_init();
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
    char auth[300];
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    static conn cs[MAX_CONNS];
    for (long i = 0; i < conns; i++) {
        conn *c = &cs[i];
        c->e = curl_easy_init();
        curl_easy_setopt(c->e, CURLOPT_URL, url);
        curl_easy_setopt(c->e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->e, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c->e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c->e, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(c->e, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c->e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(c->e, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(c->e, CURLOPT_PRIVATE, c);
        if (cacert) curl_easy_setopt(c->e, CURLOPT_CAINFO, cacert);
        next_body(c);
        curl_multi_add_handle(m, c->e);
    }
    double t0 = bu_mono(), cpu0 = pid ? cpu_secs(pid) : -1, end = count ? 1e300 : t0 + secs;
    unsigned long long ok = 0, errors = 0;
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        int stop = bu_mono() >= end || (count && seq >= count);
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            CURL *e = msg->easy_handle;
            conn *c = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&c);
            long code = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result == CURLE_OK && code == 202) ok++;
            else if (errors++ < 5)
                fprintf(stderr, "http_single: %s (HTTP %ld)\n", curl_easy_strerror(msg->data.result), code);
            curl_multi_remove_handle(m, e);
            if (!stop) {
                next_body(c);
                curl_multi_add_handle(m, e);
            }
        }
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
        else if (!stop) running = 1;   /* all were re-added: go on */
    }
    double took = bu_mono() - t0, cpu1 = pid ? cpu_secs(pid) : -1;
    printf("RESULT requests=%llu secs=%.3f rps=%.0f errors=%llu", ok, took, (double)ok / took, errors);
    if (pid && cpu0 >= 0 && cpu1 >= 0 && ok) printf(" cpu_us_per_req=%.2f", (cpu1 - cpu0) * 1e6 / (double)ok);
    printf("\n");
    for (long i = 0; i < conns; i++) curl_easy_cleanup(cs[i].e);
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
    curl_global_cleanup();
    return ok ? 0 : 1;
}
