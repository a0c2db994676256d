/* pairs.h — the names of a (key group, partition) pair in cluster mode
 * (issue 14, /work/issue14-plan.md "Names"): every wing that names a pair in
 * a NATS subject, a consumer or a KV key takes the group's token from here,
 * so the rekey stage (ingest), the pair consumers (route) and the leases
 * (cluster) agree. A header of the lowest level: it includes nothing of the
 * other wings, so any wing may use it.
 *
 * Written by helper h8 (the rekey stage) because the shared header planned
 * for helper A (server/cluster/names.h) did not exist yet; the rule is the
 * plan's, word for word. Keep one of the two when merging. */
#ifndef VIGIL_COMMON_PAIRS_H
#define VIGIL_COMMON_PAIRS_H

#include <stddef.h>

/* The group's token: the group name itself when it matches
 * [A-Za-z0-9_-]+, otherwise "x" followed by the lowercase hex of its bytes
 * (an empty name gives "x"). Writes the NUL-terminated token into buf (n
 * bytes) and returns its length; -1 when it does not fit (buf then holds ""
 * when n > 0) or group/buf is NULL. The token holds only [A-Za-z0-9_-], so
 * it is one NATS subject token and one KV key token. */
int vigil_cluster_group_token(const char *group, char *buf, size_t n);

#endif
