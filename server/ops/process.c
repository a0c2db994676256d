/* process.c — the process_* metrics every Prometheus client library
 * exports (CPU seconds, resident and virtual memory, open and maximum file
 * descriptors, start time), read from /proc/self as the Go and Python
 * clients do, so that a Grafana panel made for any process fits vigil. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "ops_int.h"

/* From /proc/self/stat: utime + stime (fields 14, 15), starttime (22, ticks
 * after boot), vsize (23, bytes), rss (24, pages). */
static int read_stat(double *cpu_s, double *start_after_boot_s, double *vsize, double *rss_pages) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long v[23] = {0};      /* v[0] is field 3 */
    int k = 0;
    for (p++; *p && k < 23; k++) {
        while (*p == ' ') p++;
        char *end;
        v[k] = strtoull(p, &end, 10);
        while (*end && *end != ' ') end++;   /* field 3 is a letter */
        p = end;
    }
    if (k < 22) return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *cpu_s = (double)(v[11] + v[12]) / hz;
    *start_after_boot_s = (double)v[19] / hz;
    *vsize = (double)v[20];
    *rss_pages = (double)v[21];
    return 0;
}

static double boot_time_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static long open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1;   /* the directory's own descriptor */
}

void vops_process_metrics(void (*emit)(void *ud, const char *text, size_t len), void *ud) {
    char b[1536];
    int n = 0;
    double cpu, start, vsize, rss;
    if (read_stat(&cpu, &start, &vsize, &rss) == 0) {
        n += snprintf(b + n, sizeof b - (size_t)n,
                      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %.0f\n"
                      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                      "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %.0f\n",
                      cpu, rss * (double)sysconf(_SC_PAGESIZE), vsize);
        double bt = boot_time_s();
        if (bt > 0)
            n += snprintf(b + n, sizeof b - (size_t)n,
                          "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                          "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                          bt + start);
    }
    long fds = open_fds();
    struct rlimit rl;
    if (fds >= 0)
        n += snprintf(b + n, sizeof b - (size_t)n,
                      "# HELP process_open_fds Number of open file descriptors.\n"
                      "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n", fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        n += snprintf(b + n, sizeof b - (size_t)n,
                      "# HELP process_max_fds Maximum number of open file descriptors.\n"
                      "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    if (n > 0) emit(ud, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}
