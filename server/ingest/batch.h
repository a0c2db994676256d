/* batch.h — the one NDJSON batch decoder of the ingest wing.
 *
 * Every source of events hands its bytes here: the body of POST /v1/events
 * (DESIGN.md §6), a core-NATS message and a JetStream message (§7). A body
 * is either one JSON event (mode ONE_EVENT: HTTP with a Content-Type other
 * than NDJSON; the event may be pretty-printed over many lines) or NDJSON
 * (mode LINES: one event per '\n'-separated line, blank lines skipped, CRLF
 * accepted). Each event is checked to be UTF-8 (RFC 8259 §8.1: JSON text is
 * UTF-8; RFC 3629: no overlong forms, no surrogates U+D800..U+DFFF, nothing
 * above U+10FFFF, no truncated sequence) and then decoded with
 * vigil_event_decode_json (require_keys on). What happens to a bad line is
 * the policy: HTTP is all or nothing (STOP_AT_FIRST_BAD), NATS and
 * JetStream skip it and go on (SKIP_BAD), counting and logging it through a
 * callback. The decoder has no state, takes no lock and does no I/O: it can
 * be called from any thread (an MHD thread, a NATS callback, a fetcher).
 *
 * Units: `line` is 1-based and counts every '\n'-separated line of the body,
 * blank ones included; `offset` is a 0-based byte offset from the start of
 * the body. */
#ifndef VIGIL_INGEST_BATCH_H
#define VIGIL_INGEST_BATCH_H

#include <stddef.h>
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/status.h"

/* Most events of one batch when vigil_batch_opts.max_events is 0. */
#define VIGIL_BATCH_MAX_EVENTS_DEFAULT 65536

typedef enum vigil_batch_mode {
    VIGIL_BATCH_LINES = 0,    /* NDJSON: each non-blank line is one event */
    VIGIL_BATCH_ONE_EVENT     /* the whole body is one event (may span lines) */
} vigil_batch_mode;

typedef enum vigil_batch_policy {
    VIGIL_BATCH_STOP_AT_FIRST_BAD = 0,   /* all or nothing: the first bad line fails the call */
    VIGIL_BATCH_SKIP_BAD                 /* a bad line is reported to on_bad and skipped */
} vigil_batch_policy;

/* Why a batch or one of its lines was refused. Owned by whoever holds it
 * (the caller's stack for the last argument of vigil_batch_decode; for
 * on_bad, a struct that lives only during the callback). */
typedef struct vigil_batch_error {
    size_t line;           /* 1-based line of the bad line (ONE_EVENT: 1, or the line of the
                              invalid UTF-8 byte); 0 when no line is to blame (empty body,
                              out of memory, bad argument) */
    size_t offset;         /* 0-based byte offset in the body: the first byte of the invalid
                              UTF-8 sequence, else the first byte of the line */
    vigil_status status;   /* EPARSE (not JSON, invalid UTF-8, empty body), ENOTIME, ENOKEY,
                              ETOOBIG, ENOMEM, EINVAL */
    const char *limit;     /* the limit the line is over ("max_fields", "max_depth",
                              "max_key_bytes"; static), else NULL; its status is EPARSE */
    char msg[512];         /* the reason, without the line number: "invalid UTF-8 at byte offset
                              17: overlong encoding", or the decoder's message ("missing event
                              time field (looked for 'ts')") */
} vigil_batch_error;

/* Called once per skipped line under SKIP_BAD, in body order, on the
 * caller's thread before vigil_batch_decode returns. `e` lives only during
 * the call. Never called under STOP_AT_FIRST_BAD, nor for blank lines. */
typedef void (*vigil_batch_bad_fn)(void *ud, const vigil_batch_error *e);

/* Zero-initialised options mean: LINES, STOP_AT_FIRST_BAD, default decode
 * options, an empty body is an error, at most VIGIL_BATCH_MAX_EVENTS_DEFAULT
 * events, no callback. */
typedef struct vigil_batch_opts {
    vigil_batch_mode mode;
    vigil_batch_policy policy;
    const vigil_decode_opts *decode;   /* borrowed for the call; NULL: defaults ("ts", "id", auto) */
    size_t max_events;       /* most non-blank lines in one body; one more fails the whole call
                                with ETOOBIG (HTTP answers 413) under either policy, checked
                                before any line is decoded; 0: the default */
    int empty_ok;            /* 1: a body with no non-blank line gives 0 events (NATS); 0: it is
                                EPARSE "empty body: expected a JSON event or NDJSON lines" (HTTP) */
    int max_fields;          /* object members in one event, every level (0: no limit) */
    int max_depth;           /* nesting of objects and arrays in one event (0: no limit) */
    int max_key_bytes;       /* bytes of one key value (0: no limit) */
    /* NULL: an event without an id field gets the first 16 hex digits of
     * SHA-256 of its bytes (vigil_event_decode_json). Set (cluster mode's
     * rekey stage, issue 14): it gets "<prefix>:<line>" instead (line as in
     * vigil_batch_error; a prefix over 128 bytes is cut), so that a message
     * decoded again yields the same ids. Borrowed for the call. */
    const char *fallback_id_prefix;
    vigil_batch_bad_fn on_bad;   /* may be NULL */
    void *ud;                    /* passed to on_bad */
} vigil_batch_opts;

/* The decoded events. The caller owns the struct (usually on its stack);
 * vigil_batch_decode fills it, vigil_batch_release empties it. */
typedef struct vigil_batch {
    vigil_event **events;    /* events[0..n) in body order, each a reference owned by the batch.
                                To hand one on (vsrv_enqueue takes references), set its entry
                                to NULL, or n to 0 for all, before vigil_batch_release */
    size_t n;
    size_t cap;              /* allocated entries of events (private) */
    size_t lines;            /* non-blank lines examined (ONE_EVENT: 1) */
    size_t bad;              /* lines skipped under SKIP_BAD */
    size_t bad_nokey;        /* of those, how many were ENOKEY (the others count as bad) */
    size_t bad_limit;        /* of those, how many were over an event limit (e->limit) */
} vigil_batch;

/* Split body[0..len) per o->mode, check UTF-8 and decode each event against
 * rs (borrowed: it must outlive the call, not the events, which hold what
 * they need). body need not be NUL-terminated and is not modified. *out is
 * always initialised; o may be NULL (zero options); err may be NULL.
 *
 * Returns:
 *  VIGIL_OK        *out holds the good events (SKIP_BAD: out->bad lines were skipped,
 *                  each reported to on_bad). May be 0 events (empty_ok, or every line bad).
 *  VIGIL_EPARSE, VIGIL_ENOTIME, VIGIL_ENOKEY  (STOP_AT_FIRST_BAD) the first bad line's status;
 *                  *err names its line, offset and reason; *out is empty: nothing applied.
 *  VIGIL_EPARSE    an empty body (no non-blank line) without empty_ok; err->line is 0.
 *  VIGIL_ETOOBIG   more than max_events non-blank lines (checked first, before any bad line);
 *                  err->line is the first line over.
 *  VIGIL_ENOMEM    out of memory (the events array or the decoder); *out is empty.
 *  VIGIL_EINVAL    rs or out is NULL, or body is NULL with len > 0.
 * After VIGIL_OK the caller owns *out: vigil_batch_release it (also with 0 events).
 * On any other status *out is empty (no events, nothing to release). */
vigil_status vigil_batch_decode(const vigil_ruleset *rs, const vigil_batch_opts *o, const char *body,
                                size_t len, vigil_batch *out, vigil_batch_error *err);

/* Release the events still in b (NULL entries skipped) and free the array;
 * b is left empty (n == 0) and may be decoded into again. Accepts NULL. */
void vigil_batch_release(vigil_batch *b);

/* Check s[0..len) as UTF-8 (RFC 3629). Returns 1 if valid; else 0 with
 * *bad = offset of the first byte of the first ill-formed sequence and
 * *why = a static text ("overlong encoding", "UTF-16 surrogate", ...).
 * bad and why may be NULL. */
int vigil_utf8_check(const char *s, size_t len, size_t *bad, const char **why);

/* For tests: the allocator of the events array (default realloc; what it
 * returns is freed with free()), so that a test can make it fail. Change it
 * only while no batch is being decoded. */
extern void *(*vigil_batch_realloc)(void *p, size_t n);

#endif
