/* log.c — text or JSON log lines on stderr (log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "log.h"

static atomic_int json_mode;
static _Thread_local const char *cur_request;

void vigil_log_set_json(int json) { atomic_store(&json_mode, json ? 1 : 0); }
int vigil_log_json(void) { return atomic_load(&json_mode); }
void vigil_log_set_request(const char *id) { cur_request = id; }
const char *vigil_log_request(void) { return cur_request; }

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static void write_all(const char *s, size_t n) {
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

void vigil_log(vigil_log_level level, const char *component, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t len = strlen(msg);
    while (len && msg[len - 1] == '\n') msg[--len] = '\0';
    if (!atomic_load(&json_mode)) {
        char line[2100];
        int m = snprintf(line, sizeof line, "vigil: %s\n", msg);
        if (m > 0) write_all(line, (size_t)m < sizeof line ? (size_t)m : sizeof line - 1);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "ts", when);
    cJSON_AddStringToObject(o, "level", level_names[level <= VIGIL_LOG_ERROR ? level : VIGIL_LOG_ERROR]);
    if (component) cJSON_AddStringToObject(o, "component", component);
    cJSON_AddStringToObject(o, "msg", msg);
    if (cur_request) cJSON_AddStringToObject(o, "request_id", cur_request);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return;
    size_t sl = strlen(s);
    s[sl] = '\n';   /* over the NUL: one write for the whole line */
    write_all(s, sl + 1);
    cJSON_free(s);
}
