/* fault.c — VIGIL_FAULT="<point>:<n>": SIGKILL (or SIGSTOP) at the n-th
 * arrival at a point, for the crash and cluster tests (see fault.h). */
#include "fault.h"
#include "server/common/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char fault_point[32];
static long fault_n;
static atomic_long fault_count;
static atomic_int fault_on;

static void parse(void)
{
    const char *v = getenv("VIGIL_FAULT");
    const char *colon = v ? strchr(v, ':') : NULL;
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof fault_point)
        return;
    char *end;
    long n = strtol(colon + 1, &end, 10);
    if (*end || n < 1)
        return;
    memcpy(fault_point, v, (size_t)(colon - v));
    fault_n = n;
    atomic_store(&fault_on, 1);
}

int vigil_fault_due(const char *point)
{
    pthread_once(&once, parse);
    if (!atomic_load_explicit(&fault_on, memory_order_relaxed) || strcmp(point, fault_point) != 0)
        return 0;
    return atomic_fetch_add(&fault_count, 1) + 1 == fault_n;
}

void vigil_fault_kill(const char *point)
{
    vigil_log(VIGIL_LOG_INFO, "serve", "VIGIL_FAULT: killing myself at %s:%ld", point, fault_n);
    fflush(stderr);
    kill(getpid(), SIGKILL);
    for (;;)
        pause();
}

void vigil_fault_point(const char *point)
{
    if (vigil_fault_due(point))
        vigil_fault_kill(point);
}

void vigil_fault_pause(const char *point)
{
    if (!vigil_fault_due(point))
        return;
    vigil_log(VIGIL_LOG_INFO, "serve", "VIGIL_FAULT: stopping myself (SIGSTOP) at %s:%ld", point, fault_n);
    fflush(stderr);
    kill(getpid(), SIGSTOP);   /* the whole process, as `kill -STOP` does; resumes on SIGCONT */
}
