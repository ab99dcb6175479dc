/*
 * version.c — the library's own version, compiled in from shoal/version.h (which the
 * build checks against the project's version), so that a program can compare the
 * headers it was built with against the library it runs with.
 */
#include "shoal/version.h"

const char *shoal_version(void)
{
    return SHOAL_VERSION;
}

int shoal_version_number(void)
{
    return SHOAL_VERSION_NUMBER;
}
