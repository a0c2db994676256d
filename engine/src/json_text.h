/* json_text.h — the bytes cJSON accepts in an event and a JSON text
 * (RFC 8259) does not. An event keeps its JSON text as it came and its
 * alerts quote that text as evidence, verbatim, so an event's text must be
 * JSON itself: the decoder (event_json.c) refuses what this finds. Private to
 * engine/. */
#ifndef VIGIL_JSON_TEXT_H
#define VIGIL_JSON_TEXT_H

#include <stddef.h>

/* buf[0..len) parsed by cJSON, whose value ends at value_end: the offset of
 * the first byte that is not JSON, or len when there is none. *why (static
 * text) names it: text after the value, or a control character (below 0x20:
 * NUL, any inside a string, outside one any but the whitespace \t \n \r). */
size_t vjson_text_bad(const char *buf, size_t len, size_t value_end, const char **why);

#endif
