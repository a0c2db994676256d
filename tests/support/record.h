/* record.h — test helpers for the key-state record (engine/src/codec.c):
 * a version 5 record as version 4 (v5's distinct()/is_new() values carry a
 * type tag and a window entry ends with its retained windows: records
 * without such values and with none retained convert), a
 * version 4 record rewritten in the version 3 layout (the same bytes
 * without each rule entry's u32 length), so that the tests that pin the
 * old layouts keep comparing bytes. */
#ifndef VIGIL_TEST_RECORD_H
#define VIGIL_TEST_RECORD_H

#include <stddef.h>

/* Write v4 record `in` as a v3 record into out (cap bytes; the version byte
 * becomes 3). Returns its length, or 0 when `in` is not a well-formed v4
 * record or out is too small. */
/* Write v5 record `in` (one without distinct()/is_new() values; or a v6 one,
 * whose window-id entries go) as a v4
 * record into out: the version byte changes and each window entry loses its
 * trailing u32 count of retained windows. Returns its length, or 0 when `in`
 * is not such a v5 record or out is too small. */
/* Write v6 record `in` as a v5 record into out: the version byte changes and
 * the window-id entries (kind 3) go. Returns its length, or 0 when `in` is
 * not a well-formed v6 record or out is too small. */
size_t test_record_v6_to_v5(const unsigned char *in, size_t len, unsigned char *out, size_t cap);

size_t test_record_v5_to_v4(const unsigned char *in, size_t len, unsigned char *out, size_t cap);

size_t test_record_v4_to_v3(const unsigned char *in, size_t len, unsigned char *out, size_t cap);

#endif
