/* common.c — option parsing and error reporting shared by the sub-commands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_common_option(int argc, char **argv, int *i, shoal_attr *attr)
{
    const char *opt = argv[*i];
    const char **slot = !strcmp(opt, "--root")     ? &attr->root
                        : !strcmp(opt, "--domain") ? &attr->domain
                                                   : NULL;
    if (!slot)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "shoal: %s needs an argument\n", opt);
        return -1;
    }
    *slot = argv[++*i];
    return 1;
}

int cli_exit_code(int rc)
{
    switch (rc) {
    case SHOAL_OK:
        return CLI_OK;
    case SHOAL_ESYS:
    case SHOAL_ENOMEM:
    case SHOAL_EACCES:
    case SHOAL_ENOSPC:
        return CLI_SYSTEM;
    case SHOAL_ENAME:
    case SHOAL_EINVAL:
        return CLI_USAGE;
    default:
        return CLI_FAIL;
    }
}

int cli_fail(const char *cmd, int rc)
{
    const char *detail = shoal_errdetail();
    fprintf(stderr, "shoal %s: %s%s%s\n", cmd, shoal_strerror(rc), *detail ? ": " : "",
            detail);
    return cli_exit_code(rc);
}
