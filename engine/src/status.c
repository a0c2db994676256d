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

static void escape_controls(char *s, size_t cap) {
    char out[sizeof ((vigil_error *)0)->msg];
    size_t o = 0, lim = cap < sizeof out ? cap : sizeof out;
    int changed = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < lim; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            out[o++] = (char)*p;
            continue;
        }
        changed = 1;
        char esc[5];
        int n = *p == '\n' ? snprintf(esc, sizeof esc, "\\n")
              : *p == '\r' ? snprintf(esc, sizeof esc, "\\r")
              : *p == '\t' ? snprintf(esc, sizeof esc, "\\t")
                           : snprintf(esc, sizeof esc, "\\x%02x", *p);
        if (o + (size_t)n + 1 > lim) break;
        memcpy(out + o, esc, (size_t)n);
        o += (size_t)n;
    }
    if (!changed) return;
    out[o] = '\0';
    memcpy(s, out, o + 1);
}

void vigil_error_escape(vigil_error *err) {
    if (!err) return;
    escape_controls(err->file, sizeof err->file);
    escape_controls(err->rule, sizeof err->rule);
    escape_controls(err->msg, sizeof err->msg);
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
