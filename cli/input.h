/* input.h — reading event files for `vigil replay` and `vigil feed`.
 *
 * An input is `[TYPE=]PATH`: CSV (header row) or JSON Lines, gzip read
 * directly (zlib reads plain files too), the format told by the name
 * (.csv, .csv.gz → CSV; anything else → JSON Lines). Several inputs are
 * merged stably by (event time, input order, line), the order DESIGN.md §5
 * gives replay. A line that does not decode is reported with file:line and
 * counted, never silently dropped. */
#ifndef VIGIL_INPUT_H
#define VIGIL_INPUT_H

#include <stdint.h>
#include "vigil/event.h"

typedef struct vigil_input vigil_input;
typedef struct vigil_merge vigil_merge;

/* spec: "[TYPE=]PATH". The ruleset decides which fields are extracted; it
 * and opts must outlive the input. */
vigil_status vigil_input_open(const char *spec, const vigil_ruleset *rs, const vigil_decode_opts *opts,
                              vigil_input **out, vigil_error *err);
void vigil_input_close(vigil_input *in);
/* Next event (caller releases it) or VIGIL_ENOTFOUND at end. A bad line
 * returns its error with err->file/line set; call again to go on. */
vigil_status vigil_input_next(vigil_input *in, vigil_event **ev, vigil_error *err);
uint64_t vigil_input_bytes_read(const vigil_input *in);   /* compressed bytes consumed */
uint64_t vigil_input_size(const vigil_input *in);         /* file size */

/* Merge of several inputs. Bad lines are reported through on_error (may be
 * NULL) and counted. */
typedef void (*vigil_merge_error_fn)(void *ud, const vigil_error *err);
vigil_status vigil_merge_create(vigil_input **ins, int n, vigil_merge_error_fn fn, void *ud, vigil_merge **out);
/* Next event in merge order, or VIGIL_ENOTFOUND at the end of all inputs. */
vigil_status vigil_merge_next(vigil_merge *m, vigil_event **ev, int *input);
uint64_t vigil_merge_errors(const vigil_merge *m);
double vigil_merge_progress(const vigil_merge *m);          /* 0..1 by bytes */
void vigil_merge_destroy(vigil_merge *m);                   /* closes the inputs */

#endif
