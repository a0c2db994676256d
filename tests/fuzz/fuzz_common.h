/* fuzz_common.h — what the fuzz targets share: the fixed ruleset each one
 * builds in LLVMFuzzerInitialize. Included by the targets (header-only: each
 * target is one translation unit, built by build.sh). */
#ifndef VIGIL_FUZZ_COMMON_H
#define VIGIL_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/rules.h"

#ifndef FUZZ_LISTS_DIR   /* build.sh passes the absolute path */
#define FUZZ_LISTS_DIR "tests/fuzz/lists"
#endif

/* Compile the target's own ruleset (lists from FUZZ_LISTS_DIR); a ruleset
 * that does not compile is a bug in the target: abort with the error. */
static vigil_ruleset *fuzz_ruleset(const char *target, const char *src) {
    vigil_rules_opts ro = {.lists_dir = FUZZ_LISTS_DIR};
    vigil_error errs[4];
    int nerrs = 0;
    vigil_ruleset *rs = NULL;
    char name[64];
    snprintf(name, sizeof name, "%s.lua", target);
    if (vigil_rules_load_string(name, src, strlen(src), &ro, &rs, errs, 4, &nerrs) != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&errs[0], buf, sizeof buf);
        fprintf(stderr, "%s: the fuzz ruleset does not compile: %s\n", target, buf);
        abort();
    }
    return rs;
}

#endif
