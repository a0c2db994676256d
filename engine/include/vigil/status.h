/* status.h — the one status enum of vigil, shared by every layer.
 *
 * Every function that can fail returns a vigil_status and gives its results
 * through out-parameters (the nats.c convention). Library errors (hs_error_t,
 * natsStatus, CURLcode, hiredis REDIS_ERR, Lua status) are mapped to these
 * once, at the boundary. When a caller must show a human-readable message
 * (rule compile errors, a rejected event) it goes into a vigil_error. */
#ifndef VIGIL_STATUS_H
#define VIGIL_STATUS_H

#include <stddef.h>

typedef enum vigil_status {
    VIGIL_OK = 0,
    VIGIL_ENOMEM,        /* an allocation failed */
    VIGIL_EINVAL,        /* bad argument from the caller (a bug) */
    VIGIL_EPARSE,        /* malformed input: JSON, CSV, time, duration */
    VIGIL_ENOKEY,        /* event lacks the key field of a key group */
    VIGIL_ENOTIME,       /* event lacks its event-time field, or it is unparsable */
    VIGIL_ECOMPILE,      /* a rule did not compile */
    VIGIL_EREGEX,        /* Hyperscan refused a pattern or failed to scan */
    VIGIL_EIO,           /* file or socket error */
    VIGIL_EFULL,         /* a bounded queue or buffer is full */
    VIGIL_ETOOBIG,       /* input over its size limit */
    VIGIL_ESTORE,        /* the state store failed (Redis down, bad record) */
    VIGIL_ETIMEOUT,      /* a deadline passed */
    VIGIL_ENOTFOUND,     /* no such rule, key, file */
    VIGIL_ELATE,         /* event older than watermark - allowed_lateness */
    VIGIL_EUNAVAILABLE,  /* a dependency (NATS, Redis) is unreachable */
    VIGIL_ESTALE,        /* made against a ruleset a hot reload replaced meanwhile: redo it */
    VIGIL_ECONFLICT      /* the request conflicts with the current state (a version, a name) */
} vigil_status;

/* A static string naming the status ("ENOMEM: out of memory"); never NULL. */
const char *vigil_status_str(vigil_status s);

/* Human-readable error context. `file`, `line` and `rule` are filled where
 * known (rule compile errors, replay input lines); `msg` says what is wrong
 * and, where it helps, what was expected. Owned by the caller, usually on
 * the stack. */
typedef struct vigil_error {
    char file[256];
    int line;            /* 1-based; 0 when not applicable */
    char rule[64];
    char msg[512];
} vigil_error;

/* Reset every field to empty. Accepts NULL. */
void vigil_error_clear(vigil_error *err);

/* printf into err->msg (truncating); returns `s` so that callers can write
 * `return vigil_error_set(err, VIGIL_EPARSE, "…", …);`. Accepts err == NULL. */
vigil_status vigil_error_set(vigil_error *err, vigil_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Rewrite file, rule and msg in place so that they hold no control
 * character: CR, LF and tab become the two characters \r, \n, \t, any other
 * byte below 0x20 and DEL become \xHH (truncating at the field's size). For
 * errors whose text comes from input (a rule file's error() or names), before
 * they reach a log line or a terminal. Accepts NULL. */
void vigil_error_escape(vigil_error *err);

/* "file:line: rule 'name': msg" with the known parts, into buf of size n. */
void vigil_error_format(const vigil_error *err, char *buf, size_t n);

#endif
