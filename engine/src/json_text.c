/* json_text.c — what cJSON accepts and a JSON text does not (json_text.h).
 * First stage of the flow, beside event_json.c's decoder. cJSON stops after the
 * first value (`{…} x` parses), treats every byte up to 0x20 as whitespace
 * and takes control characters, NUL included, inside strings. The event
 * keeps its text as it came, and alerts quote it as evidence: a NUL cut
 * that evidence (cJSON_CreateRaw reads a C string), anything else made the
 * alert invalid JSON to a strict receiver (found by fuzz_http, issue 13). */
#include "json_text.h"

size_t vjson_text_bad(const char *buf, size_t len, size_t value_end, const char **why) {
    size_t i = value_end;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
    if (i < len) {
        *why = "text after the event's value";
        return i;
    }
    *why = "a control character that is not escaped";
    int in_str = 0;
    for (i = 0; i < value_end && i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (in_str) {
            if (c < 0x20) return i;
            if (c == '\\') i++;   /* the escaped byte (cJSON checked the escape) */
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            return i;
        }
    }
    *why = NULL;
    return len;
}
