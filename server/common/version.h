/* version.h — what this build is: the release version (CMakeLists.txt's
 * project version) and the git commit it was built from, for
 * `vigil --version` and the vigil_build_info metric. */
#ifndef VIGIL_COMMON_VERSION_H
#define VIGIL_COMMON_VERSION_H

const char *vigil_version(void);   /* "0.9.0" */
const char *vigil_commit(void);    /* short hash, "+dirty" appended when the tree had changes; "unknown" outside git */

#endif
