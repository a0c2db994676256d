/* score.h — scoring a replay against labels (`vigil replay --label-field`).
 *
 * Alerts name the event they are about (`event`), which is not always the
 * event being fed: an absence alert or a closed window fires later. So the
 * scorer remembers every event's label (and segment) by id, marks the rules
 * that alerted on each id, and counts at the end: per rule, the distinct
 * events it alerted on and how many were labelled true; over all rules, the
 * events with at least one alert; per segment, recall. */
#ifndef VIGIL_SCORE_H
#define VIGIL_SCORE_H

#include <stdint.h>
#include <stddef.h>

typedef struct vigil_score vigil_score;

typedef struct vigil_score_result {
    uint64_t *events_alerted;   /* per rule: distinct events alerted */
    uint64_t *tp;               /* per rule: of those, labelled true */
    uint64_t alerted, alerted_tp, positives;
    uint64_t *seg_pos, *seg_hit;   /* per segment index */
} vigil_score_result;

/* NULL when out of memory. nsegs: the most segment indexes used (< 255). */
vigil_score *vigil_score_create(int nrules, int nsegs);
void vigil_score_destroy(vigil_score *sc);
/* Remember an event: its label (0/1) and segment index (-1: none). An id
 * seen before keeps its first entry. Returns -1 when out of memory. */
int vigil_score_event(vigil_score *sc, const char *id, int label, int seg);
/* Rule `rule` alerted about event `id` (an id never seen is counted as an
 * unlabelled event). */
int vigil_score_alert(vigil_score *sc, const char *id, int rule);
/* Count; the arrays in r are allocated here and freed by vigil_score_result_free. */
int vigil_score_finish(const vigil_score *sc, vigil_score_result *r);
void vigil_score_result_free(vigil_score_result *r);

#endif
