/* rendezvous.h — which member a (key group, partition) pair prefers:
 * rendezvous hashing (highest random weight; Thaler and Ravishankar, "A
 * Name-Based Mapping Scheme for Rendezvous", 1996). Each member scores each
 * pair with a 64-bit hash of (member name, group token, partition); the
 * highest score wins, ties go to the smaller name. When a member joins it
 * wins only the pairs where its score is highest, taking them from their
 * owners and moving nothing else; when one leaves only its pairs move. Every
 * member computes the same answer from the same member list, so nobody
 * coordinates. Pure functions, thread-safe. */
#ifndef VIGIL_CLUSTER_RENDEZVOUS_H
#define VIGIL_CLUSTER_RENDEZVOUS_H

#include <stdint.h>

/* The score of member for the pair (gtoken, p): FNV-1a 64 over
 * "<member>\0<gtoken>\0<p as decimal>", then the SplitMix64 finalizer so
 * that near-identical names spread. */
uint64_t vigil_rendezvous_score(const char *member, const char *gtoken, int p);

/* The index in members[0..n) of the pair's preferred member; -1 when n <= 0.
 * NULL entries are skipped. */
int vigil_rendezvous_pick(const char *const *members, int n, const char *gtoken, int p);

#endif
