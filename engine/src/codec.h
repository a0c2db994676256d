/* codec.h — the versioned binary record of one key's state (runs and
 * window contents of every rule of its key group), as stored by a store. */
#ifndef VIGIL_CODEC_H
#define VIGIL_CODEC_H

#include "engine_int.h"

typedef struct vcodec_buf { unsigned char *p; size_t len, cap; } vcodec_buf;

vigil_status vcodec_encode(const vigil_engine *eng, const vkeystate *ks, vcodec_buf *out);
/* Replace ks's state by the record's. Entries of rules that are not in the
 * ruleset (by name and version) are dropped. */
vigil_status vcodec_decode(vigil_engine *eng, vkeystate *ks, const unsigned char *p, size_t len);
/* Expiry for the record: the longest window or within of the group, from
 * the key's last event (ms), 0 for none. */
int64_t vcodec_ttl(const vigil_engine *eng, const vkeystate *ks);

#endif
