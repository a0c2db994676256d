/* event.h — decoding input (JSON objects, CSV rows) into events.
 *
 * The first stage of the flow: bytes from HTTP, NATS or a replay file become
 * a vigil_event. Only the fields that some rule references (the ruleset's
 * field table) are extracted, into typed slots; the raw bytes are kept for
 * the alert's evidence. Event time and id come from configured fields; keys
 * and ids are taken from the raw text as strings, never through a double, so
 * ids above 2^53 and "01234" survive. Events are refcounted because the
 * server hands one event to several key groups and partial matches keep the
 * events they accepted. */
#ifndef VIGIL_EVENT_H
#define VIGIL_EVENT_H

#include <stdint.h>
#include <stddef.h>
#include "vigil/status.h"
#include "vigil/ruleset.h"

typedef enum vigil_time_format {
    VIGIL_TIME_AUTO,     /* number < 1e11: seconds, else milliseconds; string: RFC 3339 */
    VIGIL_TIME_S,
    VIGIL_TIME_MS,
    VIGIL_TIME_RFC3339
} vigil_time_format;

#define VIGIL_MAX_NAME_FIELDS 8

/* How to find an event's time, id and type. Zero-initialised options mean:
 * time field "ts", id field "id", format auto, no default type. The first
 * field of each list that is present in the event is used. */
typedef struct vigil_decode_opts {
    const char *time_fields[VIGIL_MAX_NAME_FIELDS];
    int ntime_fields;
    const char *id_fields[VIGIL_MAX_NAME_FIELDS];
    int nid_fields;
    vigil_time_format time_format;
    const char *type_default;   /* `TYPE=` of --input: sets field "type" where absent */
} vigil_decode_opts;

/* Parse a comma-separated list ("tx_datetime,report_datetime") into
 * fields[]/n; the strings point into a copy owned by the caller via *store
 * (free it after use). */
vigil_status vigil_decode_opts_set_list(const char *csv, const char **fields, int *n, char **store);
vigil_status vigil_time_format_parse(const char *s, vigil_time_format *f);

/* Decode options together with the strings their field lists point into,
 * as the command line (--time-field a,b) and the config file set them.
 * Owned by whoever holds the struct: init sets the defaults (ts, id, auto),
 * free releases the backing strings (and accepts a zeroed struct). */
typedef struct vigil_event_opts {
    vigil_decode_opts decode;
    char *time_store, *id_store;   /* backing strings of the field lists */
} vigil_event_opts;
void vigil_event_opts_init(vigil_event_opts *o);
void vigil_event_opts_free(vigil_event_opts *o);

typedef struct vigil_event vigil_event;

/* Decode one JSON object of len bytes. `fallback_id` (e.g. "file.csv:17" or
 * a stream sequence) is the id when the event has none of the id fields; it
 * may be NULL, then the id is the first 16 hex digits of SHA-256 of the bytes.
 * On success *out holds a new event (refcount 1). Errors: EPARSE (not a JSON
 * object), ENOTIME (no time field, or unparsable), ENOKEY (lacks the key of
 * some key group — only when require_keys), each with err->msg saying which
 * field and why. */
vigil_status vigil_event_decode_json(const vigil_ruleset *rs, const vigil_decode_opts *o,
                                     const char *buf, size_t len, const char *fallback_id,
                                     int require_keys, vigil_event **out, vigil_error *err);

/* CSV: a header maps columns to the ruleset's fields. The header and the rows
 * are RFC 4180 (quotes, doubled quotes; no newline inside a field). A value
 * that parses fully as a number is a number; an empty one is missing. */
typedef struct vigil_csv_header vigil_csv_header;
vigil_status vigil_csv_header_create(const vigil_ruleset *rs, const char *line, size_t len,
                                     vigil_csv_header **out, vigil_error *err);
void vigil_csv_header_destroy(vigil_csv_header *h); /* accepts NULL; events keep their own reference */
vigil_status vigil_event_decode_csv(const vigil_ruleset *rs, const vigil_decode_opts *o,
                                    vigil_csv_header *h, const char *line, size_t len,
                                    const char *fallback_id, int require_keys,
                                    vigil_event **out, vigil_error *err);

void vigil_event_retain(vigil_event *e);        /* atomic */
void vigil_event_release(vigil_event *e);       /* atomic; frees at zero; accepts NULL */

int64_t vigil_event_time(const vigil_event *e);             /* ms since the epoch */
const char *vigil_event_id(const vigil_event *e);           /* NUL-terminated, lives with e */
/* The key of key group g as a string (numbers by their raw text), or NULL
 * when the event lacks it. Lives with e. */
const char *vigil_event_key(const vigil_event *e, int g, size_t *len);
/* Slot of field index f (see vigil_ruleset_field_count); lives with e. */
const vigil_value *vigil_event_slot(const vigil_event *e, int f);
/* The event as a JSON object text (the raw bytes for a JSON event; rendered
 * from the row for CSV). Lives with e. */
const char *vigil_event_json(const vigil_event *e, size_t *len);

/* The same event (id, time, JSON text) decoded again against rs, e.g. a
 * ruleset a hot reload made meanwhile (its new fields and key groups).
 * *out is a new reference. VIGIL_EPARSE, VIGIL_ENOMEM. */
vigil_status vigil_event_redecode(const vigil_ruleset *rs, const vigil_event *e, vigil_event **out);

/* Any field of the event by path, also one no rule references (replay's
 * --label-field): for CSV the column's text ("1", "0.5"), for JSON the
 * value's text (strings unquoted, numbers and booleans as written by
 * cJSON). Writes a NUL-terminated text into buf; returns 0 if the field is
 * absent. Slow path (JSON events are parsed again): for scoring, not rules. */
int vigil_event_field_text(const vigil_event *e, const char *path, char *buf, size_t n);

/* Parse a time value: RFC 3339 text ("2018-04-01T00:00:31Z",
 * "2018-04-01T00:00:31.250+02:00") or a number per the format. */
vigil_status vigil_time_parse_rfc3339(const char *s, size_t len, int64_t *ms);
vigil_status vigil_time_from_number(double v, vigil_time_format f, int64_t *ms);
/* Format ms as "2018-04-01T00:09:29.000Z" into buf (>= 25 bytes). */
void vigil_time_format_rfc3339(int64_t ms, char *buf, size_t n);

#endif
