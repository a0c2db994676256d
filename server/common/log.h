/* log.h — the server's log lines, on stderr: plain text ("vigil: <message>",
 * the default) or one JSON object a line (log_format = "json",
 * DESIGN.md §5) for a log shipper:
 *
 *   {"ts":"2026-12-07T06:13:02.123Z","level":"warn","component":"reload",
 *    "msg":"reload: rules/x.lua refused, …","request_id":"7f3a…"}
 *
 * `level` is debug, info, warn or error; `component` the wing that speaks
 * (http, ingest, route, control, alerts, ops, state, serve); `request_id`
 * is there when the line was written while an HTTP request was being
 * handled on this thread (vigil_log_set_request: http.c sets it around
 * every handler call, and answers carry it as X-Request-Id). A message
 * never holds a secret: callers redact URLs (DESIGN §6). Thread-safe; a
 * line is written with one write(2), so lines of several threads do not
 * interleave. */
#ifndef VIGIL_COMMON_LOG_H
#define VIGIL_COMMON_LOG_H

typedef enum vigil_log_level { VIGIL_LOG_DEBUG, VIGIL_LOG_INFO, VIGIL_LOG_WARN, VIGIL_LOG_ERROR } vigil_log_level;

/* 0: text (default), 1: JSON. Set once at start, before threads log. */
void vigil_log_set_json(int json);
int vigil_log_json(void);

/* One line (fmt without the trailing newline; "vigil: " is added in text mode). */
void vigil_log(vigil_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The request id of the request this thread is handling (NULL: none). The
 * string must live until it is cleared. */
void vigil_log_set_request(const char *id);
const char *vigil_log_request(void);

#endif
