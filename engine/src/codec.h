/* codec.h — the versioned binary record of one key's state (runs and
 * window contents of every rule of its key group), as stored by a store. */
#ifndef VIGIL_CODEC_H
#define VIGIL_CODEC_H

#include "engine_int.h"

typedef struct vcodec_buf { unsigned char *p; size_t len, cap; } vcodec_buf;

/* Appends ks's record to out (out->len may be > 0). scratch holds the
 * record's body while its event table is gathered; NULL: a temporary one. */
vigil_status vcodec_encode(const vigil_engine *eng, const vkeystate *ks, vcodec_buf *out, vcodec_buf *scratch);
/* Every dirty key's record, back to back in one buffer that the engine
 * keeps across commits (eng->cbufs[0]; [1] is the body scratch), and the
 * records pointing into it (eng->crecs, eng->ncrecs): a commit of ~1,000
 * keys made 2 to 8 allocations per key before, ~5 % of the JetStream →
 * Redis path's instructions (issue 16). VIGIL_ENOMEM: nothing is kept. */
vigil_status vcodec_encode_dirty(vigil_engine *eng);
/* After a commit: the records are forgotten, the buffers kept (unless
 * outsized, or all: the engine goes away). */
void vcodec_commit_free(vigil_engine *eng, int all);
/* Replace ks's state by the record's. Entries of rules that are not in the
 * ruleset (by name and version) are dropped. */
vigil_status vcodec_decode(vigil_engine *eng, vkeystate *ks, const unsigned char *p, size_t len);
/* Expiry for the record: the longest window or within of the group, from
 * the key's last event (ms), 0 for none. */
int64_t vcodec_ttl(const vigil_engine *eng, const vkeystate *ks);

#endif
