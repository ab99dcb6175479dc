/* common.c — option parsing and error reporting shared by the sub-commands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int usage_error(const char *cmd, const char *help, const char *what,
                       const char *arg)
{
    fprintf(stderr, "shoal %s: %s%s%s%s\n%s", cmd, what, arg ? " \"" : "", arg ? arg : "",
            arg ? "\"" : "", help);
    return CLI_USAGE;
}

int cli_parse(int argc, char **argv, const char *cmd, const char *help, const char *flag,
              int min_names, int max_names, cli_args *out)
{
    memset(out, 0, sizeof(*out));
    out->names = argv; /* names are moved to the front of argv: never past i */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--root") || !strcmp(a, "--domain")) {
            if (i + 1 >= argc)
                return usage_error(cmd, help, "missing the argument of", a);
            *(a[2] == 'r' ? &out->attr.root : &out->attr.domain) = argv[++i];
        } else if (flag && !strcmp(a, flag)) {
            out->flag = 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error(cmd, help, "unknown option", a);
        } else if (out->nnames == max_names) {
            return usage_error(cmd, help, "unexpected argument", a);
        } else {
            argv[out->nnames++] = argv[i];
        }
    }
    if (out->nnames < min_names)
        return usage_error(cmd, help, "no name given", NULL);
    return -1;
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
