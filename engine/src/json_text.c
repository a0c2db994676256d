/* json_text.c — what cJSON accepts and a JSON text does not, and where the
 * top-level members are (json_text.h). First stage of the flow, beside
 * event_json.c's decoder. cJSON stops after the first value (`{…} x`
 * parses), treats every byte up to 0x20 as whitespace and takes control
 * characters, NUL included, inside strings. The event keeps its text as it
 * came, and alerts quote it as evidence: a NUL cut that evidence
 * (cJSON_CreateRaw reads a C string), anything else made the alert invalid
 * JSON to a strict receiver (found by fuzz_http, issue 13). The pass runs
 * over text cJSON accepted, so its brackets, strings and escapes are
 * well-formed; the member offsets it notes rely on that. */
#include "json_text.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define C1 1, 1, 1, 1, 1, 1, 1, 1
/* Bytes that need a look outside a string: the control characters, '"',
 * ':' and the brackets; inside one: the control characters, '"' and '\\'.
 * Everything else is skipped, four bytes at a time. */
static const unsigned char outside[256] = {C1, C1, C1, C1, ['"'] = 1, [':'] = 1, ['['] = 1, [']'] = 1,
                                           ['{'] = 1, ['}'] = 1};
static const unsigned char inside[256] = {C1, C1, C1, C1, ['"'] = 1, ['\\'] = 1};
#undef C1

/* The first i >= from with t[b[i]] set, or end (t is `inside` when in_str,
 * else `outside`). With SSE2 (every x86-64), sixteen bytes at a time: the
 * same bytes as a mask. */
static inline size_t skip(const unsigned char *b, size_t from, size_t end, const unsigned char *t, int in_str) {
    size_t i = from;
#ifdef __SSE2__
    const __m128i ctl = _mm_set1_epi8(0x1f);
    while (i + 16 <= end) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, ctl), ctl), _mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
        if (in_str) {
            m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
        } else {
            __m128i low = _mm_or_si128(v, _mm_set1_epi8(0x20));   /* { [ and } ] */
            m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(':')),
                                             _mm_or_si128(_mm_cmpeq_epi8(low, _mm_set1_epi8('{')),
                                                          _mm_cmpeq_epi8(low, _mm_set1_epi8('}')))));
        }
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask) return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#endif
    (void)in_str;
    while (i + 4 <= end && !(t[b[i]] | t[b[i + 1]] | t[b[i + 2]] | t[b[i + 3]])) i += 4;
    while (i < end && !t[b[i]]) i++;
    return i;
}

size_t vjson_text_bad(const char *buf, size_t len, size_t value_end, const char **why, uint32_t *colons, int max,
                      int *ncolons) {
    size_t i = value_end;
    int n = 0;
    if (ncolons) *ncolons = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n')) i++;
    if (i < len) {
        *why = "text after the event's value";
        return i;
    }
    *why = "a control character that is not escaped";
    if (!colons) max = 0;
    const unsigned char *b = (const unsigned char *)buf;
    size_t end = value_end < len ? value_end : len;
    int depth = 0;
    uint32_t esc = 0;   /* the last string had a backslash */
    for (i = skip(b, 0, end, outside, 0); i < end; i = skip(b, i + 1, end, outside, 0)) {
        unsigned char c = b[i];
        if (c == '"') {   /* a string: to its closing quote */
            esc = 0;
            for (i = skip(b, i + 1, end, inside, 1); i < end; i = skip(b, i, end, inside, 1)) {
                c = b[i];
                if (c == '"') break;
                if (c < 0x20) return i;
                esc = VJSON_NAME_ESCAPED;   /* '\\' and the escaped byte (cJSON checked the escape) */
                i += 2;
            }
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ':') {
            if (depth == 1 && n < max && i < VJSON_NAME_ESCAPED) colons[n++] = (uint32_t)i | esc;
        } else if (c != '\t' && c != '\n' && c != '\r') {
            return i;
        }
    }
    if (ncolons) *ncolons = n;
    *why = NULL;
    return len;
}
