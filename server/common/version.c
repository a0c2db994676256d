/* version.c — the build's version and commit (version.h). The build
 * regenerates vigil_commit.h before every compile (cmake/commit.cmake), so
 * the commit is the one of the tree being built; a build outside CMake
 * (the fuzz targets) says "unknown". */
#if defined(__has_include)
#if __has_include("vigil_commit.h")
#include "vigil_commit.h"
#endif
#endif
#include "version.h"

#ifndef VIGIL_VERSION_STRING
#define VIGIL_VERSION_STRING "unknown"
#endif
#ifndef VIGIL_COMMIT_STRING
#define VIGIL_COMMIT_STRING "unknown"
#endif

const char *vigil_version(void) { return VIGIL_VERSION_STRING; }
const char *vigil_commit(void) { return VIGIL_COMMIT_STRING; }
