/*
 * shoal/version.h — the version of the shoal headers, and of the library at run time.
 *
 * The macros give the version of the headers a program was compiled with;
 * shoal_version() and shoal_version_number() give the version of the libshoal the
 * program runs with, which may be another one when the shared library was upgraded.
 * Versions follow semantic versioning: within one major version (and, while the major
 * version is 0, within one minor version) the library stays compatible with programs
 * built against older headers. The format of segments has its own version, checked
 * on every open (SHOAL_EVERSION).
 *
 *   if (shoal_version_number() / 100 != SHOAL_VERSION_NUMBER / 100)
 *       fprintf(stderr, "built with shoal %s, running with %s\n", SHOAL_VERSION,
 *               shoal_version());
 */
#ifndef SHOAL_VERSION_H
#define SHOAL_VERSION_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHOAL_VERSION_MAJOR 0
#define SHOAL_VERSION_MINOR 1
#define SHOAL_VERSION_PATCH 0
/* "MAJOR.MINOR.PATCH" */
#define SHOAL_VERSION "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for comparisons in #if */
#define SHOAL_VERSION_NUMBER                                                             \
    (SHOAL_VERSION_MAJOR * 10000 + SHOAL_VERSION_MINOR * 100 + SHOAL_VERSION_PATCH)

/* The running library's version as "MAJOR.MINOR.PATCH" (a constant string). */
SHOAL_API const char *shoal_version(void);
/* The running library's version as MAJOR * 10000 + MINOR * 100 + PATCH. */
SHOAL_API int shoal_version_number(void);

#ifdef __cplusplus
}
#endif
#endif
