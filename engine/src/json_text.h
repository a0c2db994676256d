/* json_text.h — the bytes cJSON accepts in an event and a JSON text
 * (RFC 8259) does not, and where the event's top-level members are. An
 * event keeps its JSON text as it came and its alerts quote that text as
 * evidence, verbatim, so an event's text must be JSON itself: the decoder
 * (event_json.c) refuses what this finds. The same pass over the bytes
 * notes where each top-level member's ':' is, so that the decoder reads a
 * number's raw text (a key, an id: 1, 1.0 and 1e0 are three keys) there
 * instead of searching the bytes for it (cJSON keeps only the double).
 * Private to engine/. */
#ifndef VIGIL_JSON_TEXT_H
#define VIGIL_JSON_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* A top-level member's ':' offset in the low 31 bits; this bit set when the
 * member's name was written with an escape (a backslash). */
#define VJSON_NAME_ESCAPED UINT32_C(0x80000000)

/* buf[0..len) parsed by cJSON, whose value ends at value_end: the offset of
 * the first byte that is not JSON, or len when there is none. *why (static
 * text) names it: text after the value, or a control character (below 0x20:
 * NUL, any inside a string, outside one any but the whitespace \t \n \r).
 * When colons is not NULL and the value is an object, colons[i] is the
 * offset of the i-th top-level member's ':' (| VJSON_NAME_ESCAPED), for the
 * first *ncolons members (at most max; none at offsets of 2^31 or more);
 * the i-th member is the root's i-th cJSON child. */
size_t vjson_text_bad(const char *buf, size_t len, size_t value_end, const char **why, uint32_t *colons, int max,
                      int *ncolons);

#endif
