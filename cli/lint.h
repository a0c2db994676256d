/* lint.h — warnings from what a run saw (cli/lint.c): fields no event had,
 * steps and `where`s that matched no event. */
#ifndef VIGIL_CLI_LINT_H
#define VIGIL_CLI_LINT_H

#include <stdio.h>
#include "vigil/engine.h"

typedef struct vigil_lint vigil_lint;

vigil_lint *vigil_lint_create(const vigil_ruleset *rs);   /* NULL when out of memory */
/* One event the run read (before or after feeding it; it is only read). */
void vigil_lint_event(vigil_lint *l, const vigil_event *ev);
/* Print the warnings to out, each prefixed with `who` ("vigil replay");
 * eng (may be NULL: no step check) is the engine the events were fed to.
 * Returns how many. */
int vigil_lint_report(vigil_lint *l, const vigil_engine *eng, FILE *out, const char *who);
void vigil_lint_destroy(vigil_lint *l);   /* accepts NULL */

#endif
