/* json_scan.h — a single-pass scanner for the events that plain JSON
 * writes, in front of cJSON (json_scan.c says why it exists). Private to
 * engine/.
 *
 * vjs_scan either understands an event completely — an object of strict
 * RFC 8259 JSON with no escape in any string, no control character, only
 * space, tab, CR and LF between tokens, numbers of at most 63 bytes,
 * nesting of at most VJS_MAX_DEPTH, at most VJS_MAX_MEMBERS members in all,
 * nothing after the object but those blanks — and then cJSON would accept
 * it with the same values, or it answers 0 and the decoder takes the cJSON
 * path for the event (which also gives every error message). */
#ifndef VIGIL_JSON_SCAN_H
#define VIGIL_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define VJS_MAX_DEPTH 64
#define VJS_MAX_MEMBERS 128

enum { VJS_STR, VJS_NUM, VJS_TRUE, VJS_FALSE, VJS_NULL, VJS_OBJ, VJS_ARR };

/* One member of one object, in document order (offsets into the text). */
typedef struct vjs_member {
    uint32_t name, name_len;   /* the name's bytes, without quotes */
    uint32_t val, val_len;     /* the value's bytes (a string without its quotes) */
    int32_t obj;               /* the object it belongs to: 0 the root, k the k-th '{' */
    int32_t child;             /* an object value: its number; else -1 */
    uint8_t type;              /* VJS_* */
} vjs_member;

typedef struct vjs_doc {
    const char *buf;
    size_t len;
    int n;                     /* members */
    vjs_member m[VJS_MAX_MEMBERS];
} vjs_doc;

/* 1: buf[0..len) is such an event, d describes it; 0: take cJSON's path. */
/* event_json.c takes the scan's path only while this is 1 (the default);
 * the differential tests set it to 0 to decode the same bytes with cJSON. */
extern int vjs_enabled;

int vjs_scan(const char *buf, size_t len, vjs_doc *d);

#endif
