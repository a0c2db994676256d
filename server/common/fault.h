/* fault.h — fault injection for the crash tests (issue 4).
 *
 * The crash tests must kill `vigil serve` at precise phases (mid-batch,
 * mid-commit, after a commit but before its acks…), which a kill -9 from
 * outside at a random moment hits only by luck. With the environment
 * variable VIGIL_FAULT="<point>:<n>", the n-th time (counted over the whole
 * process, from 1) the server reaches <point>, it kills itself with SIGKILL
 * — exactly what kill -9 does, at a known place. Points: fetch, feed,
 * commit, ack, snapshot, deliver (webhook dispatcher). Unset: never. */
#ifndef VIGIL_FAULT_H
#define VIGIL_FAULT_H

/* 1 when this call is the n-th arrival at `point` (the caller then finishes
 * what must be on the wire and calls vigil_fault_kill), else 0. Thread-safe;
 * costs one relaxed load when VIGIL_FAULT is unset. */
int vigil_fault_due(const char *point);
/* SIGKILL this process now (a message on stderr first). */
void vigil_fault_kill(const char *point);
/* vigil_fault_due + vigil_fault_kill. */
void vigil_fault_point(const char *point);
/* At the n-th arrival: SIGSTOP this process (it resumes on SIGCONT) — a
 * process paused mid-commit past its leases (the cluster test: a stale
 * commit refused by the fencing epoch). Point: pair_commit. */
void vigil_fault_pause(const char *point);

#endif
