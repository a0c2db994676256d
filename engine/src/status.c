/* status.c — texts for vigil_status and the vigil_error helpers.
 * The one place where a status becomes words, so that every layer reports
 * errors the same way. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "vigil/status.h"

const char *vigil_status_str(vigil_status s) {
    switch (s) {
    case VIGIL_OK: return "OK";
    case VIGIL_ENOMEM: return "ENOMEM: out of memory";
    case VIGIL_EINVAL: return "EINVAL: invalid argument";
    case VIGIL_EPARSE: return "EPARSE: malformed input";
    case VIGIL_ENOKEY: return "ENOKEY: event lacks its key field";
    case VIGIL_ENOTIME: return "ENOTIME: event lacks a valid event time";
    case VIGIL_ECOMPILE: return "ECOMPILE: rule did not compile";
    case VIGIL_EREGEX: return "EREGEX: regular expression error";
    case VIGIL_EIO: return "EIO: input/output error";
    case VIGIL_EFULL: return "EFULL: queue full";
    case VIGIL_ETOOBIG: return "ETOOBIG: input over its size limit";
    case VIGIL_ESTORE: return "ESTORE: state store error";
    case VIGIL_ETIMEOUT: return "ETIMEOUT: deadline passed";
    case VIGIL_ENOTFOUND: return "ENOTFOUND: not found";
    case VIGIL_ELATE: return "ELATE: event is late";
    case VIGIL_EUNAVAILABLE: return "EUNAVAILABLE: dependency unreachable";
    case VIGIL_ESTALE: return "ESTALE: the rules changed meanwhile";
    case VIGIL_ECONFLICT: return "ECONFLICT: conflicts with the current state";
    }
    return "unknown status";
}

void vigil_error_clear(vigil_error *err) {
    if (err) memset(err, 0, sizeof *err);
}

vigil_status vigil_error_set(vigil_error *err, vigil_status s, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

void vigil_error_format(const vigil_error *err, char *buf, size_t n) {
    size_t off = 0;
    if (!n) return;
    buf[0] = '\0';
    if (err->file[0]) {
        off += (size_t)snprintf(buf + off, n - off, "%s", err->file);
        if (off < n && err->line > 0) off += (size_t)snprintf(buf + off, n - off, ":%d", err->line);
        if (off < n) off += (size_t)snprintf(buf + off, n - off, ": ");
    }
    if (off < n && err->rule[0]) off += (size_t)snprintf(buf + off, n - off, "rule '%s': ", err->rule);
    if (off < n) snprintf(buf + off, n - off, "%s", err->msg);
}
